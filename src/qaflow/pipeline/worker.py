"""The consumer loop every stage runs in, over any bus.

poll -> decode (a bad record becomes a dead letter, with its origin) -> handle ->
publish -> flush (durable) -> commit. Offsets are committed only after the effects of
the records before them are durable, so a crash re-delivers and never skips.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from qaflow.bus.base import Consumer, Producer, Record
from qaflow.core.errors import BusError, InvalidMessageError
from qaflow.core.messages import DeadLetter, Origin, decode_for_topic
from qaflow.core.offsets import OffsetTracker
from qaflow.pipeline.outputs import Output, dead_letter

logger = logging.getLogger(__name__)

KEEPALIVE_S = 30.0  # with every slot busy, still poll this often, so Kafka keeps the member

Decoded = tuple[Record, Any]


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


class Worker:
    """Batch worker: the whole polled batch is handled, published and committed together."""

    def __init__(
        self,
        stage: str,
        consumer: Consumer,
        producer: Producer,
        handle_batch: Callable[[list[Decoded]], list[Output]],
        *,
        max_records: int = 256,
        inline_dead_letters: bool = False,
    ) -> None:
        self.stage = stage
        self.consumer = consumer
        self.producer = producer
        self.handle_batch = handle_batch
        self.max_records = max_records
        # The storage stage writes dead letters itself instead of publishing them
        # (a poison record on qa.dead-letter must not loop back onto it).
        self.inline_dead_letters = inline_dead_letters
        self.processed = 0

    @property
    def idle(self) -> bool:
        return True

    def start(self) -> None:
        self.producer.start()
        self.consumer.start()

    def step(self, timeout_s: float = 1.0) -> int:
        """One round; returns the records taken or finished (0 means nothing happened)."""
        records = self.consumer.poll(timeout_s, self.max_records)
        if not records:
            return 0
        ok, bad = decode_records(records, self.stage)
        if self.inline_dead_letters:
            ok.extend((rec, DeadLetter.model_validate_json(out.value)) for rec, out in zip(records, bad, strict=False))
            bad = []
        outputs = self.handle_batch(ok) if ok else []
        self.publish([*bad, *outputs])
        self.commit(next_offsets(records))
        self.processed += len(records)
        return len(records)

    def publish(self, outputs: Sequence[Output]) -> None:
        for out in outputs:
            self.producer.send(out.topic, out.key, out.value)
        if outputs:
            self.producer.flush()

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """Commit; a retriable refusal (the group rebalanced) is logged and the loop goes on:
        the records behind it are delivered again, to this consumer or the partition's new owner."""
        try:
            self.consumer.commit(offsets)
        except BusError as exc:
            if not exc.retriable:
                raise
            logger.warning("stage %s: offsets not committed, records will be re-delivered: %s", self.stage, exc)

    def close(self) -> None:
        self.consumer.close()
        self.producer.close()


class ConcurrentWorker(Worker):
    """Runs ``handle_one`` on up to ``concurrency`` records at once (the llm-worker).

    Records finish out of order; offsets are committed per partition only up to the lowest
    unfinished record.
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
    ) -> None:
        from concurrent.futures import ThreadPoolExecutor

        super().__init__(stage, consumer, producer, lambda batch: [], max_records=concurrency)
        self.handle_one = handle_one
        self.concurrency = concurrency
        self.limiter = limiter
        self.tracker = OffsetTracker()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"{stage}-call")
        self._running: dict[Any, Record] = {}
        self._last_poll = time.monotonic()

    @property
    def idle(self) -> bool:
        return not self._running

    def capacity(self) -> int:
        limit = self.concurrency if self.limiter is None else min(self.concurrency, self.limiter.limit)
        return max(0, limit - len(self._running))

    def step(self, timeout_s: float = 1.0) -> int:
        room = self.capacity()
        if room:
            records = self.consumer.poll(0.0 if self._running else timeout_s, room)
            self._last_poll = time.monotonic()
        else:
            records = []
            if time.monotonic() - self._last_poll > KEEPALIVE_S:
                self._keep_alive()
        ok, bad = decode_records(records, self.stage)
        self.publish(bad)
        started = {(rec.tp, rec.offset) for rec, _ in ok}
        for rec in records:
            self.tracker.started(rec.tp, rec.offset)
            if (rec.tp, rec.offset) not in started:  # dead-lettered just now
                self.tracker.finished(rec.tp, rec.offset)
        for rec, msg in ok:
            self._running[self._pool.submit(self.handle_one, msg, origin_of(rec))] = rec
        finished = self._collect(0.05 if records else timeout_s) if self._running else 0
        committable = self.tracker.committable()
        if committable:
            self.commit(committable)
        return len(records) + finished

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

    def _collect(self, timeout_s: float | None) -> int:
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(list(self._running), timeout=timeout_s, return_when=FIRST_COMPLETED)
        outputs: list[Output] = []
        finished: list[Record] = []
        for fut in done:
            rec = self._running.pop(fut)
            outputs.extend(fut.result())  # an unexpected exception crashes the worker: re-delivery
            finished.append(rec)
        self.publish(outputs)  # durable before the offsets move
        for rec in finished:
            self.tracker.finished(rec.tp, rec.offset)
        self.processed += len(finished)
        return len(finished)

    def drain(self) -> None:
        """Finish the calls in flight, publish and commit them (graceful shutdown)."""
        while self._running:
            self._collect(None)
        committable = self.tracker.committable()
        if committable:
            self.commit(committable)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        super().close()
