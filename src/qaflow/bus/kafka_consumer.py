"""A kafka-python group consumer behind the bus ``Consumer`` seam.

Offsets are committed only by :meth:`commit` (auto-commit is off); a new group starts
at the earliest offset. Rebalances: a listener (run on kafka-python's I/O thread, so it
never blocks on the consumer's own calls) logs the partitions revoked and assigned,
re-applies ``pause`` to partitions that come back, and, before revoked partitions move,
commits the offsets the caller still holds for them (:meth:`set_revoke_hook`: a worker that
commits at an interval), so the new owner does not deliver them again. A commit that the
group refuses (a rebalance happened, or the member was evicted), or that names partitions
this consumer no longer owns, raises :class:`CommitFailedError` with ``retriable = True``:
the records behind it are delivered again to the partitions' owner, so the caller may log
it and go on polling.

A transport error out of ``poll`` (the broker restarting: ``KafkaConnectionError``,
``KafkaTimeoutError``, ``NodeNotReadyError``...) raises :class:`BusError` with kafka-python's
own ``retriable`` flag, so the service loop waits and polls again instead of dying.
``partitions_lost`` counts evictions (the listener's ``on_partitions_lost``).

Each commit's metadata string is the wall-clock time of the commit, in ms since the epoch
(:func:`commit_stamp`); :meth:`committed_ms` reads it back, so a new owner of a partition
knows from when on its previous owner may have emitted outputs it has not committed.

A group join is never left half done (:meth:`_join_outstanding`). kafka-python 3.0.12 runs
JoinGroup/SyncGroup as a task that outlives the poll that started it, and its ``poll`` only
goes back to that task while ``need_rejoin()`` holds. When the rejoin was caused by new topic
metadata (a first assignment made before the topic's partitions were known: "No partition
metadata for topic ..."), the leader's assignment takes the new metadata snapshot, so once
the task has assigned, ``need_rejoin()`` is False and the finished join is never applied: the
member keeps no partitions and, its heartbeat off during the join, is evicted in silence
(the ``qaflow run`` over Kafka stall). Java's client checks "rejoin needed *or pending*"; here,
while a join is outstanding the consumer asks for a rejoin, so the next poll awaits the task
(or, if it already finished, joins once more), and a poll waits up to ``JOIN_GRACE_S`` longer
for a join in flight instead of leaving it to finish between polls.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import kafka.errors as kerrors
from kafka import AsyncConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata, TopicPartition

from qaflow.bus.base import Record
from qaflow.bus.commits import RevokeHook, commit_stamp, failed, rebalanced, revoked_before, stamp_ms
from qaflow.core.errors import BusError
from qaflow.core.offsets import TopicPartition as Tp

logger = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "max_poll_records": 500,
    "allow_auto_create_topics": False,
}
JOIN_POLL_MS = 100
JOIN_GRACE_S = 1.0  # at most this much longer a poll waits for a group join it left in flight
# Errors meaning "the group moved on without this commit": retriable by re-polling.
REBALANCE_ERRORS = (
    kerrors.CommitFailedError,
    kerrors.RebalanceInProgressError,
    kerrors.IllegalGenerationError,
    kerrors.UnknownMemberIdError,
)




class _Listener(AsyncConsumerRebalanceListener):
    """Awaited on kafka-python's I/O thread (its event loop): the pre-revocation commit is
    awaited there, as kafka-python's own auto-commit does, instead of blocking the loop."""

    def __init__(self, owner: KafkaBusConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            logger.info("group %s: partitions revoked: %s", self.owner.group, sorted(map(tuple, revoked)))
            await self.owner.commit_before_revoke({(tp.topic, tp.partition) for tp in revoked})

    async def on_partitions_lost(self, lost: Any) -> None:  # evicted: too late to commit anything
        self.owner.partitions_lost += 1
        if lost:
            logger.warning("group %s: partitions lost (member evicted): %s", self.owner.group, sorted(map(tuple, lost)))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        logger.info("group %s: partitions assigned: %s", self.owner.group, sorted(map(tuple, assigned)))
        repause = [tp for tp in assigned if (tp.topic, tp.partition) in self.owner.paused]
        if repause:
            self.owner.client.pause(*repause)


class KafkaBusConsumer:
    def __init__(self, config: Mapping[str, Any], group: str, topics: Sequence[str]) -> None:
        self.config = {**DEFAULTS, **config, "group_id": group}
        self.group = group
        self.topics = list(topics)
        self.paused: set[Tp] = set()
        self.partitions_lost = 0  # evictions seen (on_partitions_lost)
        self.revoke_commits = 0  # offsets committed just before their partitions were revoked
        self.joins_resumed = 0  # joins kafka-python had left unapplied (see the module doc)
        self._revoke_hook: RevokeHook | None = None
        self._consumer: KafkaConsumer | None = None

    def set_revoke_hook(self, hook: RevokeHook) -> None:
        """``hook(partitions)`` hands over the offsets still to commit on ``partitions``; it is
        called on the I/O thread when a rebalance revokes them, and what it returns is committed
        then, while this member still owns them. A commit that fails there is logged: those
        records are delivered again to the new owner (at least once)."""
        self._revoke_hook = hook

    async def commit_before_revoke(self, partitions: set[Tp]) -> None:
        hook, consumer = self._revoke_hook, self._consumer
        if hook is None or consumer is None:
            return
        offsets = dict(hook(partitions))
        if not offsets:
            return
        # kafka-python's synchronous commit cannot run on its own I/O thread; its coroutine can
        # (the one its auto-commit awaits before a rebalance). Internal: absent, nothing is lost
        # but the records behind these offsets come again.
        commit = getattr(getattr(consumer, "_coordinator", None), "_commit_offsets_sync_async", None)
        if commit is None:
            logger.warning("group %s: cannot commit %s before revocation; delivered again", self.group, offsets)
            return
        try:
            stamp = commit_stamp()
            await commit({TopicPartition(*tp): OffsetAndMetadata(off, stamp, -1) for tp, off in offsets.items()})
        except Exception as exc:  # logged; the records come again to the new owner
            logger.warning("group %s: commit of %s before revocation failed, delivered again: %s",
                           self.group, sorted(offsets.items()), exc)
            return
        self.revoke_commits += 1
        logger.info("group %s: committed %s before revocation", self.group, sorted(offsets.items()))

    def start(self) -> None:
        if self._consumer is None:
            self._consumer = KafkaConsumer(**self.config)
            self._consumer.subscribe(self.topics, listener=_Listener(self))

    @property
    def client(self) -> KafkaConsumer:
        if self._consumer is None:
            msg = "KafkaBusConsumer.start() was not called"
            raise RuntimeError(msg)
        return self._consumer

    def poll(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]:
        timeout_ms = max(0, int(timeout_s * 1000))
        if timeout_ms < JOIN_POLL_MS and not self.client.assignment():
            # kafka-python 3 restarts the group join on every zero-timeout poll and never settles;
            # while unassigned, give the join handshake time to finish.
            timeout_ms = JOIN_POLL_MS
        try:
            batches = self.client.poll(timeout_ms=timeout_ms, max_records=max_records)
            grace = time.monotonic() + JOIN_GRACE_S
            while self._join_outstanding() and not batches and time.monotonic() < grace:
                batches = self.client.poll(timeout_ms=JOIN_POLL_MS, max_records=max_records)
        except kerrors.KafkaError as exc:
            msg = f"group {self.group}: poll failed: {type(exc).__name__}: {exc}"
            raise BusError(msg, retriable=bool(getattr(exc, "retriable", False))) from exc
        out: list[Record] = []
        for tp in sorted(batches, key=lambda t: (t.topic, t.partition)):
            for r in batches[tp]:
                key = None if r.key is None else r.key.decode("utf-8", "replace")
                out.append(Record(r.topic, r.partition, r.offset, key, r.value or b"", r.timestamp))
        return out

    def _join_outstanding(self) -> bool:
        """Whether a group join is in flight or finished but not applied; if so, makes sure
        the next poll goes back to it (kafka-python internals, read; absent: False)."""
        coordinator = getattr(self._consumer, "_coordinator", None)
        if getattr(coordinator, "_join_task", None) is None:
            return False
        assert coordinator is not None
        if not coordinator.need_rejoin():
            # kafka-python would not look at this join again: its poll only does while a rejoin is needed
            self.joins_resumed += 1
            logger.info("group %s: a group join outlived its poll; rejoining so that it is applied", self.group)
            coordinator.request_rejoin()
        return True

    def commit(self, offsets: Mapping[Tp, int]) -> None:
        if not offsets:
            return
        owned = self.assignment()
        stamp = commit_stamp()
        mine = {TopicPartition(*tp): OffsetAndMetadata(off, stamp, -1) for tp, off in offsets.items() if tp in owned}
        revoked = sorted(set(offsets) - owned)
        try:
            if mine:
                self.client.commit(mine)
        except REBALANCE_ERRORS as exc:
            raise rebalanced(self.group, offsets, exc) from exc
        except kerrors.KafkaError as exc:
            raise failed(self.group, offsets, exc, retriable=bool(getattr(exc, "retriable", False))) from exc
        if revoked:
            raise revoked_before(self.group, revoked)

    def committed_ms(self, partitions: Sequence[Tp]) -> dict[Tp, int]:
        """When the group last committed each of ``partitions`` (ms since the epoch, from the
        commit's metadata, :func:`commit_stamp`); partitions never committed, or committed by a
        client that wrote no time, are left out. Errors: :class:`BusError` (a blocking request
        to the group coordinator)."""
        out: dict[Tp, int] = {}
        for tp in partitions:
            try:
                found = self.client.committed(TopicPartition(*tp), metadata=True)
            except kerrors.KafkaError as exc:
                msg = f"group {self.group}: reading the committed offset of {tp} failed: {exc}"
                raise BusError(msg, retriable=bool(getattr(exc, "retriable", False))) from exc
            ms = stamp_ms(getattr(found, "metadata", None))
            if ms is not None:
                out[tp] = ms
        return out

    def pause(self, partitions: Sequence[Tp]) -> None:
        """Remembered across rebalances: a paused partition stays paused when it comes back."""
        self.paused.update(partitions)
        self._owned_only(self.client.pause, partitions)

    def resume(self, partitions: Sequence[Tp]) -> None:
        self.paused.difference_update(partitions)
        self._owned_only(self.client.resume, partitions)

    def _owned_only(self, action: Any, partitions: Sequence[Tp]) -> None:
        owned = self.assignment()
        for tp in partitions:
            if tp in owned:
                with contextlib.suppress(KeyError):  # revoked meanwhile by the I/O thread
                    action(TopicPartition(*tp))

    def seek(self, tp: Tp, offset: int) -> None:
        if tp in self.assignment():
            self.client.seek(TopicPartition(*tp), offset)

    def assignment(self) -> set[Tp]:
        return {(tp.topic, tp.partition) for tp in self.client.assignment()}

    def connected(self) -> bool:
        """Whether the group coordinator is known and its connection up (for /readyz).

        kafka-python retries a lost broker quietly inside ``poll``, so an outage does not
        always surface as an error; this reads the coordinator's state without changing it
        (kafka-python internals, read-only; True when they are not there).
        """
        consumer = self._consumer
        coordinator = getattr(consumer, "_coordinator", None)
        client = getattr(consumer, "_client", None)
        if consumer is None or coordinator is None or client is None:
            return consumer is not None
        node = getattr(coordinator, "coordinator_id", None)
        try:
            return node is not None and not client.is_disconnected(node)
        except Exception:  # internals changed: do not claim an outage
            return True

    def close(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except kerrors.KafkaError:  # close must not hide the error that led here
                logger.exception("closing consumer of group %s", self.group)
            self._consumer = None
