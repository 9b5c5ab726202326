"""The retry-worker loop: hold each failed call until its delay has passed.

Waiting records sit in a heap ordered by due time, so a long quota wait never blocks the
short backoffs behind it. Offsets are committed only up to the lowest record not yet
re-published, so a crash loses nothing (it may re-publish a few: the score stage drops
duplicate answers). Partitions pause when too many records wait, bounding memory.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Callable
from typing import Any

from qaflow.bus.base import Consumer, Producer, Record
from qaflow.core.faults import Fault, FaultPolicy
from qaflow.core.messages import Origin, RetryMessage
from qaflow.core.offsets import OffsetTracker
from qaflow.core.outputs import Output
from qaflow.core.retry import is_due, release
from qaflow.pipeline.worker import Abandoned, Worker, decode_records, origin_of

# A release's output; None drops the record (a question that already ended, the shell's check).
Release = Callable[[RetryMessage, int, Origin], Output | None]


class RetryWorker(Worker):
    def __init__(
        self,
        consumer: Consumer,
        producer: Producer,
        max_delivery_attempts: int,
        *,
        max_waiting: int = 10_000,
        clock: Callable[[], float] = time.time,
        release_one: Release = release,
        policy: FaultPolicy | None = None,
        stop: Any = None,
        restore: Callable[[int, int | None], None] | None = None,
    ) -> None:
        super().__init__("retry", consumer, producer, lambda batch: [], max_records=500, policy=policy, stop=stop,
                         restore=restore)
        self.release_one = release_one
        self.max_delivery_attempts = max_delivery_attempts
        self.max_waiting = max_waiting
        self.clock = clock
        self.tracker = OffsetTracker()
        self._heap: list[tuple[float, int, Record, RetryMessage]] = []
        self._seq = itertools.count()
        self._paused = False
        self.released = 0

    @property
    def idle(self) -> bool:
        return not self._heap and not self._outbox

    @property
    def waiting(self) -> int:
        return len(self._heap)

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def step(self, timeout_s: float = 1.0) -> int:
        self.flush_outbox()
        due = self.next_due()
        wait_s = timeout_s if due is None else max(0.0, min(timeout_s, due - self.clock()))
        records = [] if self._paused else self.consumer.poll(wait_s, self.max_records)
        if records and self.restore is not None:
            self._restore_before(records)
        if self._paused and wait_s:
            time.sleep(min(wait_s, 0.2))
        ok, bad = decode_records(records, self.stage)
        queued = {(rec.tp, rec.offset) for rec, _ in ok}
        for rec in records:
            self.tracker.started(rec.tp, rec.offset)
        dead = [rec for rec in records if (rec.tp, rec.offset) not in queued]
        self.deliver(bad, lambda: self._finish(dead))
        for rec, msg in ok:
            # A due time that is not a number is due now: its release fails and dead-letters it
            # (NaN in the heap would hold every record behind it).
            due = msg.not_before if math.isfinite(msg.not_before) else -math.inf
            heapq.heappush(self._heap, (due, next(self._seq), rec, msg))
        released = self._release_due()
        self._apply_backpressure()
        committable = self.tracker.committable()
        if committable:
            self.commit(committable)
        return len(records) + released

    def _release_due(self) -> int:
        now = self.clock()
        outputs = []
        done: list[Record] = []
        while self._heap and (self._heap[0][0] <= now or is_due(self._heap[0][3], now)):
            _, _, rec, msg = heapq.heappop(self._heap)
            out = self._release(rec, msg)
            if out is not None:
                outputs.extend(out)
                done.append(rec)
        self.deliver(outputs, lambda: self._finish(done, released=True))  # durable before the offsets move
        return len(done)

    def _release(self, rec: Record, msg: RetryMessage) -> list[Output] | None:
        """The record's release; a failure dead-letters it (the question ends failed), or, when
        transient or unknown and tries remain, holds it again after a backoff."""
        try:
            out = self.release_one(msg, self.max_delivery_attempts, origin_of(rec))
        except Abandoned:
            raise
        except Exception as exc:
            fault, tries, gives_up = self._count_failure(rec, exc)
            if gives_up:
                return self._dead_letter(rec, msg, exc, fault, tries)
            self._note_transient(rec, exc, None if fault is Fault.TRANSIENT else tries)
            again = self.clock() + self.policy.backoff(tries)
            heapq.heappush(self._heap, (again, next(self._seq), rec, msg.model_copy(update={"not_before": again})))
            return None
        self._tries.pop((rec.topic, rec.partition, rec.offset), None)
        return [] if out is None else [out]

    def _finish(self, records: list[Record], *, released: bool = False) -> None:
        for rec in records:
            self.tracker.finished(rec.tp, rec.offset)
        if released:
            self.released += len(records)
            self.processed += len(records)

    def _apply_backpressure(self) -> None:
        assigned: Any = sorted(self.consumer.assignment())
        if not self._paused and len(self._heap) >= self.max_waiting:
            self.consumer.pause(assigned)
            self._paused = True
        elif self._paused and len(self._heap) < self.max_waiting // 2:
            self.consumer.resume(assigned)
            self._paused = False
