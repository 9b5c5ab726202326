"""The consumer loop every stage runs in, over any bus.

poll -> decode (a bad record becomes a dead letter, with its origin) -> handle ->
publish -> flush (durable) -> commit. Offsets are committed only after the effects of
the records before them are durable, so a crash re-delivers and never skips.

With ``commit_interval_s`` (the services' ``QAFLOW_COMMIT_INTERVAL_MS``) a step sends its
outputs without waiting for them: the flush, and the commit of the offsets behind it, happen
at most that often, when a poll comes back empty, on drain and on close. A crash or a
rebalance re-delivers at most the records of one interval (at least once; the stages are
idempotent); offsets already acknowledged but not yet committed are committed before a
rebalance moves their partitions (``take_uncommitted``).

A stage whose duplicate check lives in memory (the score-worker) passes ``restore``: before
the first records of a partition newly assigned to it are handled, ``restore(since_ms,
last_commit_ms)`` is called with the earliest wall-clock time (ms since the epoch) at which a
previous owner may have emitted outputs for records after the committed offset (the later of
the first record's timestamp and the last commit's, ``committed_ms`` on Kafka, less
:data:`RESTORE_MARGIN_MS`) and the latest of those commits' times (``None`` when a partition
was never committed with a time: then nothing bounds the previous owner's outputs from above).
The stage reads its own outputs from then on (``Bus.read_since``) and folds them in, so
re-delivered records are dropped as duplicates (:mod:`qaflow.core.score_restore`). The
llm-worker (:class:`ConcurrentWorker`) and the retry-worker take the same hook, to rebuild the
questions they ended (:mod:`qaflow.core.restore`).

Failure handling (docs/architecture.md, "Failure handling"):

- handling a record that raises is classified by :func:`qaflow.core.faults.classify`. A
  batch that fails is handled again record by record, so one bad record never fails its
  neighbours; a record that fails for good is dead-lettered with the reason, the stage and
  its origin; a transient failure (a backend down) leaves the record uncommitted, seeks back
  to it and waits a capped backoff, the consumer alive;
- what a step must publish waits in an outbox until the bus took it: a transport error
  (broker restart) raises a retriable :class:`BusError` out of ``step`` and the next step
  publishes it again before polling anything new, so nothing is committed past it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from qaflow.bus.base import Consumer, Producer, Record
from qaflow.core.errors import BusError, InvalidMessageError
from qaflow.core.faults import KEEPALIVE_MAX_S, Fault, FaultPolicy, classify, describe
from qaflow.core.messages import DeadLetter, Origin, decode_for_topic
from qaflow.core.offsets import OffsetTracker
from qaflow.core.outputs import Output, dead_letter
from qaflow.pipeline.isolation import bare_dead_letter, handling_dead_letter

logger = logging.getLogger(__name__)

KEEPALIVE_S = KEEPALIVE_MAX_S  # default; services derive it from max.poll.interval.ms
# Clock skew between hosts and one commit interval (an I/O-thread commit before a revocation
# may leave later records sent a little before its time), with room to spare.
RESTORE_MARGIN_MS = 30_000

Decoded = tuple[Record, Any]


class Abandoned(Exception):
    """Shutdown cut the handling short; the record stays uncommitted and comes again.
    Never classified as a failure of the record."""


def origin_of(record: Record) -> Origin:
    return Origin(topic=record.topic, partition=record.partition, offset=record.offset)


def decode_records(records: Sequence[Record], stage: str) -> tuple[list[Decoded], list[Output]]:
    ok: list[Decoded] = []
    bad: list[Output] = []
    for rec in records:
        try:
            ok.append((rec, decode_for_topic(rec.topic, rec.value)))
        except InvalidMessageError as exc:
            logger.warning(
                "poison record topic=%s partition=%d offset=%d: %s", rec.topic, rec.partition, rec.offset, exc
            )
            bad.append(dead_letter(f"invalid record: {exc}", stage, origin_of(rec), payload=rec.value, key=rec.key))
    return ok, bad


def next_offsets(records: Sequence[Record]) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for rec in records:
        out[rec.tp] = max(out.get(rec.tp, 0), rec.offset + 1)
    return out


def first_offsets(records: Sequence[Record]) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for rec in records:
        out[rec.tp] = min(out.get(rec.tp, rec.offset), rec.offset)
    return out


class Worker:
    """Batch worker: the whole polled batch is handled, published and committed together.

    When ``handle_batch`` raises, the batch is handled again one record at a time (see the
    module docstring). ``stop`` (optional) cuts backoff waits short on shutdown.
    """

    def __init__(
        self,
        stage: str,
        consumer: Consumer,
        producer: Producer,
        handle_batch: Callable[[list[Decoded]], list[Output]],
        *,
        max_records: int = 256,
        inline_dead_letters: bool = False,
        policy: FaultPolicy | None = None,
        stop: threading.Event | None = None,
        commit_interval_s: float = 0.0,
        restore: Callable[[int, int | None], None] | None = None,
    ) -> None:
        self.stage = stage
        self.consumer = consumer
        self.producer = producer
        self.handle_batch = handle_batch
        self.max_records = max_records
        # The storage stage writes dead letters itself instead of publishing them
        # (a poison record on qa.dead-letter must not loop back onto it).
        self.inline_dead_letters = inline_dead_letters
        self.policy = policy or FaultPolicy()
        self.stop = stop or threading.Event()
        self.processed = 0
        self.dead_lettered = 0  # records whose handling failed for good
        self.transient_failures = 0  # handling failures retried later (backend unavailable)
        self.commit_failures = 0  # commits the group refused
        self._tries: dict[tuple[str, int, int], int] = {}
        self._transient_run = 0  # transient failures in a row, for the backoff
        self._outbox: list[tuple[list[Output], Callable[[], None]]] = []
        self._sent = 0  # outbox entries handed to the producer (not yet acknowledged)
        self._flushing = False
        # Commits at most this often (0: after every step). Offsets waiting are committed when
        # a poll comes back empty, when their partitions are revoked (a rebalance), on drain and
        # on close; a crash re-delivers at most this much.
        self.commit_interval_s = commit_interval_s
        self._uncommitted: dict[tuple[str, int], int] = {}
        self._uncommitted_lock = threading.Lock()  # the revocation hook runs on the bus's I/O thread
        self._last_commit = time.monotonic()
        self.restore = restore
        self._restored: set[tuple[str, int]] = set()  # partitions whose outputs were folded in
        self._covered: dict[tuple[str, int], int] = {}  # owned partition -> earliest restore read since
        self.restores = 0

    @property
    def idle(self) -> bool:
        """Nothing waits to be sent (what was sent may wait for its acknowledgement until the
        next flush: a loop need not wait on it, but it must not stop before :meth:`close`)."""
        return self._sent >= len(self._outbox)

    def start(self) -> None:
        self.producer.start()
        set_hook = getattr(self.consumer, "set_revoke_hook", None)  # backends that rebalance (Kafka)
        if set_hook is not None:
            set_hook(self.take_uncommitted)
        self.consumer.start()

    @property
    def bus_connected(self) -> bool:
        """False while the consumer's broker connection is down (backends that can tell)."""
        connected = getattr(self.consumer, "connected", None)
        return True if connected is None else bool(connected())

    def step(self, timeout_s: float = 1.0) -> int:
        """One round; returns the records taken or finished (0 means nothing happened)."""
        self.flush_if_due()
        records = self.consumer.poll(timeout_s, self.max_records)
        if not records:
            self.checkpoint()
            return 0
        if self.restore is not None:
            self._restore_before(records)
        ok, bad = decode_records(records, self.stage)
        if self.inline_dead_letters:
            ok.extend((rec, out.message) for rec, out in zip(records, bad, strict=False))
            bad = []
        outputs, undone = self._handle(ok)
        again = {(u.tp, u.offset) for u in undone}
        handled = [r for r in records if (r.tp, r.offset) not in again]
        offsets = next_offsets(handled)
        if undone:
            offsets.update(first_offsets(undone))
            for tp, offset in first_offsets(undone).items():
                self.consumer.seek(tp, offset)
        self.deliver([*bad, *outputs], lambda: self.commit(offsets))
        self.processed += len(handled)
        if undone:
            self._back_off()
        return len(records)

    def _restore_before(self, records: Sequence[Record]) -> None:
        """Call ``restore`` for the partitions these records come from that were not restored
        since they were assigned. A read to the end covers every partition owned when it ran,
        for any later need from the same time on (a previous owner emitted everything before
        this assignment), so a later partition may need no read. A failure puts the records back
        (they are polled again) and raises."""
        assert self.restore is not None
        with self._uncommitted_lock:
            owned = self.consumer.assignment()
            self._restored &= owned
            self._covered = {tp: since for tp, since in self._covered.items() if tp in owned}
            fresh = {r.tp for r in records} - self._restored
        if not fresh:
            return
        first: dict[tuple[str, int], int] = {}
        for r in records:
            if r.tp in fresh:
                first[r.tp] = min(first.get(r.tp, r.timestamp_ms), r.timestamp_ms)
        try:
            read_stamps = getattr(self.consumer, "committed_ms", None)
            stamps: dict[tuple[str, int], int] = read_stamps(sorted(fresh)) if read_stamps else {}
            need = {tp: max(first[tp], stamps.get(tp, 0)) - RESTORE_MARGIN_MS for tp in fresh}
            todo = [tp for tp in fresh if tp not in self._covered or self._covered[tp] > need[tp]]
            if todo:
                since = min(need[tp] for tp in todo)
                last_commit = max(stamps[tp] for tp in todo) if all(tp in stamps for tp in todo) else None
                self.restore(since, last_commit)
                self.restores += 1
                # A read to the end covers every partition owned now; one bounded by the last
                # commit only the partitions that bound was computed for.
                with self._uncommitted_lock:
                    for tp in owned if last_commit is None else todo:
                        self._covered[tp] = min(self._covered.get(tp, since), since)
        except BusError:
            for tp, offset in first_offsets(records).items():
                self.consumer.seek(tp, offset)
            raise
        with self._uncommitted_lock:
            self._restored |= fresh

    # -- isolation ---------------------------------------------------------------------------
    def _handle(self, batch: list[Decoded]) -> tuple[list[Output], list[Record]]:
        """Outputs of the records handled, and the records to deliver again (a suffix)."""
        if not batch:
            return [], []
        try:
            outputs = self.handle_batch(batch)
        except Abandoned:
            raise
        except Exception as exc:
            fault = classify(exc)
            if fault is Fault.TRANSIENT:
                self._note_transient(batch[0][0], exc)
                return [], [rec for rec, _ in batch]
            if len(batch) > 1:
                logger.warning(
                    "stage %s: batch of %d failed (%s); handling it record by record",
                    self.stage, len(batch), describe(exc),
                )
                return self._one_by_one(batch)
            return self._one_by_one(batch, first=exc)
        self._transient_run = 0
        return outputs, []

    def _one_by_one(
        self, batch: list[Decoded], first: BaseException | None = None
    ) -> tuple[list[Output], list[Record]]:
        outputs: list[Output] = []
        for i, (rec, msg) in enumerate(batch):
            try:
                if first is not None:
                    exc, first = first, None
                    raise exc
                outputs.extend(self.handle_batch([(rec, msg)]))
            except Abandoned:
                raise
            except Exception as exc:
                fault, tries, gives_up = self._count_failure(rec, exc)
                if not gives_up:
                    self._note_transient(rec, exc, tries)
                    return outputs, [r for r, _ in batch[i:]]
                outputs.extend(self._dead_letter(rec, msg, exc, fault, tries))
            else:
                self._tries.pop((rec.topic, rec.partition, rec.offset), None)
        self._transient_run = 0
        return outputs, []

    def _count_failure(self, rec: Record, exc: BaseException) -> tuple[Fault, int, bool]:
        """Counts a failed try of ``rec`` (keyed by topic, partition, offset): its fault class,
        the record's failed tries so far (this one included), and whether the policy gives up on
        it now; a record given up on is forgotten (its count dropped)."""
        fault = classify(exc)
        key = (rec.topic, rec.partition, rec.offset)
        tries = self._tries[key] = self._tries.get(key, 0) + 1
        gives_up = self.policy.gives_up(fault, tries)
        if gives_up:
            del self._tries[key]
        return fault, tries, gives_up

    def _dead_letter(self, rec: Record, msg: Any, exc: BaseException, fault: Fault, tries: int) -> list[Output]:
        self.dead_lettered += 1
        out = handling_dead_letter(self.stage, msg, origin_of(rec), exc, fault, tries, payload=rec.value, key=rec.key)
        if not self.inline_dead_letters:
            return [out]
        # The storage stage stores its dead letters itself; if even that fails, store a bare one.
        dl = out.message
        assert isinstance(dl, DeadLetter)
        for attempt in (dl, bare_dead_letter(dl, exc)):
            try:
                return self.handle_batch([(rec, attempt)])
            except Abandoned:
                raise
            except Exception as again:  # last resort, logged
                logger.error("stage %s: storing the dead letter of offset %d failed: %s", self.stage, rec.offset,
                             describe(again))
        logger.error(
            "stage %s: record topic=%s partition=%d offset=%d dropped: not even its dead letter could be stored",
            self.stage, rec.topic, rec.partition, rec.offset,
        )
        return []

    def _note_transient(self, rec: Record, exc: BaseException, tries: int | None = None) -> None:
        self.transient_failures += 1
        self._transient_run += 1
        logger.warning(
            "stage %s: handling failed at topic=%s partition=%d offset=%d%s, will be delivered again: %s",
            self.stage, rec.topic, rec.partition, rec.offset,
            "" if tries is None else f" (try {tries} of {self.policy.max_unknown_tries})", describe(exc),
        )

    def _back_off(self) -> None:
        self.stop.wait(self.policy.backoff(max(1, self._transient_run)))

    # -- publishing --------------------------------------------------------------------------
    def deliver(self, outputs: Sequence[Output], then: Callable[[], None] | None = None) -> None:
        """Publish ``outputs`` durably, then run ``then`` (a commit). On a bus failure both wait
        in the outbox, and the next :meth:`flush_outbox` tries again. Within
        ``commit_interval_s`` of the last flush the outputs are only sent (no wait), and
        ``then`` runs at the next flush."""
        self._outbox.append((list(outputs), then or (lambda: None)))
        if self._flush_due():
            self.flush_outbox()
        else:
            self._send_outbox()

    def _flush_due(self) -> bool:
        # One clock for both: a flush is due when the commit behind it is.
        return self.commit_interval_s <= 0 or time.monotonic() - self._last_commit >= self.commit_interval_s

    def flush_if_due(self) -> None:
        """Publish again what a failed send or flush left, before anything new is polled (the
        interval itself is checked when a step delivers)."""
        if self._sent < len(self._outbox):
            self.flush_outbox()

    def _send_outbox(self) -> None:
        """Hand the outbox entries not yet sent to the producer; a failure sends them all again."""
        try:
            while self._sent < len(self._outbox):
                for out in self._outbox[self._sent][0]:
                    self.producer.send(out.topic, out.key, out.value)
                self._sent += 1
        except BusError:
            self._sent = 0  # what the producer held may be lost: everything again at the next flush
            raise

    def flush_outbox(self) -> None:
        """Send what waits, wait for the bus to acknowledge it all, then run the ``then``s."""
        if not self._outbox:
            return
        try:
            self._send_outbox()
            if any(outs for outs, _ in self._outbox):
                self.producer.flush()
        except BusError:
            self._sent = 0
            raise
        done, self._outbox, self._sent = self._outbox, [], 0
        self._flushing = True  # the thens' commits are gathered into one
        try:
            for _, then in done:
                then()
        finally:
            self._flushing = False
        if self._uncommitted and self._flush_due():
            self.commit_pending()

    def checkpoint(self) -> None:
        """Flush what was sent and commit every offset behind it (idle, drain, close)."""
        self.flush_outbox()
        self.commit_pending()

    def publish(self, outputs: Sequence[Output]) -> None:
        for out in outputs:
            self.producer.send(out.topic, out.key, out.value)
        if outputs:
            self.producer.flush()

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """Commit (now, or with the next commit when ``commit_interval_s`` has not passed since
        the last); a retriable refusal (the group rebalanced, the broker is away) is counted
        and logged and the loop goes on: the records behind it are delivered again, to this
        consumer or the partition's new owner, or covered by the next commit."""
        with self._uncommitted_lock:
            self._uncommitted.update(offsets)
        if not self._flushing and time.monotonic() - self._last_commit >= self.commit_interval_s:
            self.commit_pending()

    def take_uncommitted(self, partitions: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The offsets waiting for the commit interval on ``partitions``, handed over (and
        forgotten here): the consumer commits them while it still owns the partitions, before
        a rebalance moves them (``KafkaBusConsumer.set_revoke_hook``)."""
        with self._uncommitted_lock:
            self._restored -= partitions  # if they come back, a crash elsewhere may lie between
            for tp in partitions:
                self._covered.pop(tp, None)
            return {tp: self._uncommitted.pop(tp) for tp in partitions if tp in self._uncommitted}

    def commit_pending(self) -> None:
        """Commit the offsets waiting for the commit interval, if any."""
        with self._uncommitted_lock:
            offsets, self._uncommitted = self._uncommitted, {}
        if not offsets:
            return
        self._last_commit = time.monotonic()
        try:
            self.consumer.commit(offsets)
        except BusError as exc:
            if not exc.retriable:
                raise
            self.commit_failures += 1
            logger.warning("stage %s: offsets not committed, records will be re-delivered: %s", self.stage, exc)

    def close(self) -> None:
        self.stop.set()
        if self._uncommitted or self._outbox:
            try:
                self._final_checkpoint()
            except BusError as exc:  # closing anyway: the records behind it come again
                logger.warning("stage %s: last commit failed on close: %s", self.stage, exc)
        self.consumer.close()
        self.producer.close()

    def _final_checkpoint(self) -> None:
        self.checkpoint()


class ConcurrentWorker(Worker):
    """Runs ``handle_one`` on up to ``concurrency`` records at once (the llm-worker).

    Records finish out of order; offsets are committed per partition only up to the lowest
    unfinished record. With every slot busy the loop still polls (paused) every
    ``keepalive_s``, so a slow call never costs the group membership. A record whose
    ``handle_one`` raises is retried in its slot (transient: capped backoff; unknown: a
    few tries) or dead-lettered.
    """

    def __init__(
        self,
        stage: str,
        consumer: Consumer,
        producer: Producer,
        handle_one: Callable[[Any, Origin], list[Output]],
        *,
        concurrency: int = 8,
        limiter: Any = None,
        keepalive_s: float = KEEPALIVE_S,
        policy: FaultPolicy | None = None,
        stop: threading.Event | None = None,
        restore: Callable[[int, int | None], None] | None = None,
    ) -> None:
        from concurrent.futures import ThreadPoolExecutor

        super().__init__(stage, consumer, producer, lambda batch: [], max_records=concurrency, policy=policy, stop=stop,
                         restore=restore)
        self.handle_one = handle_one
        self.concurrency = concurrency
        self.limiter = limiter
        self.keepalive_s = keepalive_s
        self.tracker = OffsetTracker()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"{stage}-call")
        self._running: dict[Any, Record] = {}
        self._closing = threading.Event()
        self._last_poll = time.monotonic()

    @property
    def idle(self) -> bool:
        return not self._running and self._sent >= len(self._outbox)

    def capacity(self) -> int:
        limit = self.concurrency if self.limiter is None else min(self.concurrency, self.limiter.limit)
        return max(0, limit - len(self._running))

    def step(self, timeout_s: float = 1.0) -> int:
        self.flush_if_due()
        room = self.capacity()
        if room:
            records = self.consumer.poll(0.0 if self._running else timeout_s, room)
            self._last_poll = time.monotonic()
            if records and self.restore is not None:
                self._restore_before(records)
        else:
            records = []
            self._keep_alive_if_due()
        ok, bad = decode_records(records, self.stage)
        started = {(rec.tp, rec.offset) for rec, _ in ok}
        for rec in records:
            self.tracker.started(rec.tp, rec.offset)
        dead = [rec for rec in records if (rec.tp, rec.offset) not in started]
        for rec, msg in ok:
            self._running[self._pool.submit(self._run_one, msg, rec)] = rec
        self.deliver(bad, lambda: self._finish(dead))
        finished = self._collect(min(0.05, self.keepalive_s) if records else min(timeout_s, self.keepalive_s)) \
            if self._running else 0
        self._commit_done()
        if not records and not finished:
            self._final_checkpoint()
        return len(records) + finished

    def _run_one(self, msg: Any, rec: Record) -> list[Output]:
        """In a pool thread: ``handle_one`` with the record's retries; never raises but
        :class:`Abandoned` (shutdown while waiting to retry)."""
        tries = 0
        while True:
            try:
                return self.handle_one(msg, origin_of(rec))
            except Abandoned:
                raise
            except Exception as exc:
                tries += 1
                fault = classify(exc)
                if self.policy.gives_up(fault, tries):
                    return self._dead_letter(rec, msg, exc, fault, tries)
                self.transient_failures += 1
                logger.warning(
                    "stage %s: handling failed (%s, try %d) topic=%s partition=%d offset=%d: %s",
                    self.stage, fault.value, tries, rec.topic, rec.partition, rec.offset, describe(exc),
                )
                if self._closing.wait(self.policy.backoff(tries)):
                    raise Abandoned from exc

    def _keep_alive_if_due(self) -> None:
        if time.monotonic() - self._last_poll >= self.keepalive_s:
            self._keep_alive()

    def _keep_alive(self) -> None:
        """Poll with every partition paused: the group sees a live member, no record is taken."""
        parts = sorted(self.consumer.assignment())
        self.consumer.pause(parts)
        try:
            stray = self.consumer.poll(0.0, 1)  # partitions assigned meanwhile are not paused
            for tp in {r.tp for r in stray}:
                self.consumer.seek(tp, min(r.offset for r in stray if r.tp == tp))
        finally:
            self.consumer.resume(parts)
        self._last_poll = time.monotonic()

    def _finish(self, records: Sequence[Record]) -> None:
        for rec in records:
            self.tracker.finished(rec.tp, rec.offset)
        self.processed += len(records)

    def _collect(self, timeout_s: float | None) -> int:
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(list(self._running), timeout=timeout_s, return_when=FIRST_COMPLETED)
        outputs: list[Output] = []
        finished: list[Record] = []
        for fut in done:
            rec = self._running.pop(fut)
            try:
                outputs.extend(fut.result())
            except Abandoned:
                continue  # left unfinished: never committed here, delivered again after the restart
            finished.append(rec)
        self.deliver(outputs, lambda: self._finish(finished))  # durable before the offsets move
        return len(finished)

    def _commit_done(self) -> None:
        committable = self.tracker.committable()
        if committable:
            self.commit(committable)

    def drain(self) -> None:
        """Finish the calls in flight, publish and commit them (graceful shutdown), polling
        (paused) meanwhile so the member keeps its partitions until the final commit."""
        self.flush_outbox()
        while self._running:
            self._collect(self.keepalive_s)
            self._keep_alive_if_due()
        self._final_checkpoint()

    def _final_checkpoint(self) -> None:
        self.flush_outbox()  # the finished records' offsets become committable
        self._commit_done()
        self.commit_pending()

    def close(self) -> None:
        self._closing.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        super().close()
