"""A confluent-kafka (librdkafka) group consumer behind the bus ``Consumer`` seam.

The same behaviour as :mod:`qaflow.bus.kafka_consumer`, on librdkafka:

- offsets are committed only by :meth:`commit` (``enable.auto.commit`` and
  ``enable.auto.offset.store`` off); a new group starts at the earliest offset;
- rebalance callbacks run inside ``poll`` on the caller's thread (librdkafka serves them there),
  so ``on_revoke`` commits the offsets :meth:`set_revoke_hook` hands over synchronously, while
  this member still owns the partitions; ``on_assign`` re-applies ``pause`` to partitions that
  come back; ``on_lost`` counts evictions (``partitions_lost``) and commits nothing;
- a commit the group refuses (rebalance, eviction) or naming partitions this consumer no longer
  owns raises :class:`CommitFailedError` with ``retriable = True``;
- each commit's metadata is its wall-clock time in ms (:func:`commit_stamp`, shared with the
  kafka-python consumer), read back by :meth:`committed_ms`;
- an error out of ``poll`` raises :class:`BusError` with librdkafka's ``retriable`` flag; errors
  librdkafka recovers from itself (a broker restarting) reach ``error_cb`` instead, which with
  its statistics (``stats_cb``) keeps :meth:`connected` up to date for /readyz;
- ``close`` leaves the group without committing (the revoke hook is not called then).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from confluent_kafka import Consumer as RdConsumer
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from qaflow.bus.base import Record
from qaflow.bus.commits import RevokeHook, commit_stamp, failed, rebalanced, revoked_before, stamp_ms
from qaflow.core.errors import BusError
from qaflow.core.offsets import TopicPartition as Tp

logger = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "allow.auto.create.topics": False,
}
COMMIT_TIMEOUT_S = 30.0
STATS_INTERVAL_MS = 5_000  # how soon connected() sees a broker back (librdkafka's statistics, stats_cb)
# Errors meaning "the group moved on without this commit": retriable by re-polling.
REBALANCE_ERRORS = frozenset({
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.FENCED_INSTANCE_ID,
    KafkaError._ASSIGNMENT_LOST,  # librdkafka's own (local) error codes start with "_"
    KafkaError._MAX_POLL_EXCEEDED,
    KafkaError._STATE,  # not a group member (any more)
})
# Client-wide conditions librdkafka retries by itself: the broker connection is down until one
# succeeds again (see connected()).
DOWN_ERRORS = frozenset({KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT})
# Consumer errors poll() logs and goes past: a subscribed topic not there (yet), end of a partition.
IGNORED_ERRORS = frozenset({
    KafkaError._PARTITION_EOF,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_TOPIC,
    KafkaError._UNKNOWN_PARTITION,
})


def _tps(partitions: Sequence[TopicPartition]) -> list[Tp]:
    return sorted((tp.topic, tp.partition) for tp in partitions)


class RdKafkaConsumer:
    def __init__(self, config: Mapping[str, Any], group: str, topics: Sequence[str]) -> None:
        self.config = {**DEFAULTS, **config, "group.id": group}
        self.group = group
        self.topics = list(topics)
        self.paused: set[Tp] = set()
        self.partitions_lost = 0  # evictions seen (on_lost)
        self.revoke_commits = 0  # offsets committed just before their partitions were revoked
        self._revoke_hook: RevokeHook | None = None
        self._consumer: RdConsumer | None = None
        self._up = True
        self._closing = False
        self._deferred: KafkaError | None = None  # an error seen while records were being returned

    def set_revoke_hook(self, hook: RevokeHook) -> None:
        """``hook(partitions)`` hands over the offsets still to commit on ``partitions``; it is called
        inside ``poll`` when a rebalance revokes them, and what it returns is committed then, while
        this member still owns them. A commit that fails there is logged: those records are
        delivered again to the new owner (at least once)."""
        self._revoke_hook = hook

    def start(self) -> None:
        if self._consumer is None:
            self._consumer = RdConsumer({"statistics.interval.ms": STATS_INTERVAL_MS, **self.config,
                                         "error_cb": self._on_error, "stats_cb": self._on_stats, "logger": logger})
            self._consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                     on_lost=self._on_lost)

    @property
    def client(self) -> RdConsumer:
        if self._consumer is None:
            msg = "RdKafkaConsumer.start() was not called"
            raise RuntimeError(msg)
        return self._consumer

    # --- librdkafka callbacks (run inside poll/consume/close, on the caller's thread) ---

    def _on_error(self, error: KafkaError) -> None:
        if error.code() in DOWN_ERRORS:
            self._up = False
        logger.warning("group %s: %s", self.group, error)

    def _on_stats(self, stats: str) -> None:
        """librdkafka's statistics: up while any real broker (not a bootstrap address) is connected."""
        brokers = json.loads(stats).get("brokers", {}).values()
        self._up = any(b.get("nodeid", -1) >= 0 and b.get("state") == "UP" for b in brokers)

    def _on_assign(self, consumer: RdConsumer, partitions: list[TopicPartition]) -> None:
        self._up = True
        logger.info("group %s: partitions assigned: %s", self.group, _tps(partitions))
        consumer.assign(partitions)  # now, so that pause below applies to owned partitions
        repause = [tp for tp in partitions if (tp.topic, tp.partition) in self.paused]
        if repause:
            consumer.pause(repause)

    def _on_revoke(self, consumer: RdConsumer, partitions: list[TopicPartition]) -> None:
        if partitions:
            logger.info("group %s: partitions revoked: %s", self.group, _tps(partitions))
            if not self._closing:
                self._commit_before_revoke(consumer, {(tp.topic, tp.partition) for tp in partitions})

    def _on_lost(self, _consumer: RdConsumer, partitions: list[TopicPartition]) -> None:
        self.partitions_lost += 1  # evicted: too late to commit anything
        if partitions:
            logger.warning("group %s: partitions lost (member evicted): %s", self.group, _tps(partitions))

    def _commit_before_revoke(self, consumer: RdConsumer, partitions: set[Tp]) -> None:
        hook = self._revoke_hook
        offsets = dict(hook(partitions)) if hook is not None else {}
        if not offsets:
            return
        stamp = commit_stamp()
        try:
            result = consumer.commit(offsets=[TopicPartition(t, p, off, stamp) for (t, p), off in offsets.items()],
                                     asynchronous=False)
            failed = [tp for tp in result if tp.error is not None]
            if failed:
                raise KafkaException(failed[0].error)
        except KafkaException as exc:  # logged; the records come again to the new owner
            logger.warning("group %s: commit of %s before revocation failed, delivered again: %s",
                           self.group, sorted(offsets.items()), exc)
            return
        self.revoke_commits += 1
        logger.info("group %s: committed %s before revocation", self.group, sorted(offsets.items()))

    # --- the Consumer seam ---

    def poll(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]:
        """Up to ``max_records`` records, returned as soon as any are there (librdkafka's ``consume``
        alone would wait the whole timeout for a full batch): one blocking ``poll``, then what is
        already fetched."""
        if self._deferred is not None:
            deferred, self._deferred = self._deferred, None
            self._raise(deferred)
        client = self.client
        first = client.poll(max(0.0, timeout_s))
        if first is None:
            return []
        messages = [first]
        if max_records > 1:
            messages += client.consume(max_records - 1, 0)
        out: list[Record] = []
        for m in messages:
            error = m.error()
            if error is None:
                out.append(_record(m))
            elif error.code() in IGNORED_ERRORS:
                logger.debug("group %s: %s", self.group, error)
            elif out:  # hand over what was read; the error comes out of the next poll
                self._deferred = error
                break
            else:
                self._raise(error)
        if out:
            self._up = True
        return out

    def _raise(self, error: KafkaError) -> NoReturn:
        # Retriable too: the broker down, and the member out of the group (_MAX_POLL_EXCEEDED after a
        # long pause: librdkafka rejoins at the next poll, as kafka-python does).
        msg = f"group {self.group}: poll failed: {error.name()}: {error.str()}"
        code = error.code()
        raise BusError(msg, retriable=error.retriable() or code in DOWN_ERRORS or code in REBALANCE_ERRORS)

    def commit(self, offsets: Mapping[Tp, int]) -> None:
        if not offsets:
            return
        owned = self.assignment()
        stamp = commit_stamp()
        mine = [TopicPartition(t, p, off, stamp) for (t, p), off in offsets.items() if (t, p) in owned]
        revoked = sorted(set(offsets) - owned)
        if mine:
            try:
                result = self.client.commit(offsets=mine, asynchronous=False)
                errors = [tp.error for tp in result if tp.error is not None]
            except KafkaException as exc:
                errors = [exc.args[0]]
            if errors:
                error = errors[0]
                if error.code() in REBALANCE_ERRORS:
                    raise rebalanced(self.group, offsets, error.name())
                raise failed(self.group, offsets, error, retriable=error.retriable())
        if revoked:
            raise revoked_before(self.group, revoked)

    def committed_ms(self, partitions: Sequence[Tp]) -> dict[Tp, int]:
        """When the group last committed each of ``partitions`` (ms since the epoch, from the commit's
        metadata, :func:`commit_stamp`); partitions never committed, or committed by a client that wrote
        no time, are left out. Errors: :class:`BusError` (a blocking request to the group coordinator)."""
        if not partitions:
            return {}
        try:
            found = self.client.committed([TopicPartition(t, p) for t, p in partitions], timeout=COMMIT_TIMEOUT_S)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            msg = f"group {self.group}: reading the committed offsets of {sorted(partitions)} failed: {error}"
            raise BusError(msg, retriable=error.retriable() or error.code() == KafkaError._TIMED_OUT) from exc
        out: dict[Tp, int] = {}
        for tp in found:
            ms = stamp_ms(tp.metadata) if tp.error is None else None
            if ms is not None:
                out[(tp.topic, tp.partition)] = ms
        return out

    def pause(self, partitions: Sequence[Tp]) -> None:
        """Remembered across rebalances: a paused partition stays paused when it comes back."""
        self.paused.update(partitions)
        owned = self._owned(partitions)
        if owned:
            self.client.pause(owned)

    def resume(self, partitions: Sequence[Tp]) -> None:
        self.paused.difference_update(partitions)
        owned = self._owned(partitions)
        if owned:
            self.client.resume(owned)

    def _owned(self, partitions: Sequence[Tp]) -> list[TopicPartition]:
        owned = self.assignment()
        return [TopicPartition(*tp) for tp in partitions if tp in owned]

    def seek(self, tp: Tp, offset: int) -> None:
        if tp in self.assignment():
            self.client.seek(TopicPartition(tp[0], tp[1], offset))

    def assignment(self) -> set[Tp]:
        return {(tp.topic, tp.partition) for tp in self.client.assignment()}

    def connected(self) -> bool:
        """Whether the broker connection is up (for /readyz): false from librdkafka's
        ``_ALL_BROKERS_DOWN`` / ``_TRANSPORT`` error until records, an assignment or its next
        statistics (every :data:`STATS_INTERVAL_MS`, served by ``poll``) show a broker up again."""
        return self._consumer is not None and self._up

    def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            self._closing = True
            try:
                consumer.close()  # leaves the group; auto-commit is off, the revoke hook skipped
            except (KafkaException, RuntimeError):  # close must not hide the error that led here
                logger.exception("closing consumer of group %s", self.group)


def _record(m: Message) -> Record:
    key = m.key()
    topic, partition, offset = m.topic(), m.partition(), m.offset()
    assert topic is not None and partition is not None and offset is not None  # set on every fetched record
    return Record(topic, partition, offset, None if key is None else key.decode("utf-8", "replace"),
                  m.value() or b"", m.timestamp()[1])
