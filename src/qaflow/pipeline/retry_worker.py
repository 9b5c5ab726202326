"""The retry-worker loop: hold each failed call until its delay has passed.

Waiting records sit in a heap ordered by due time, so a long quota wait never blocks the
short backoffs behind it. Offsets are committed only up to the lowest record not yet
re-published, so a crash loses nothing (it may re-publish a few: the score stage drops
duplicate answers). Partitions pause when too many records wait, bounding memory.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any

from qaflow.bus.base import Consumer, Producer, Record
from qaflow.core.messages import RetryMessage
from qaflow.core.offsets import OffsetTracker
from qaflow.pipeline.retry import is_due, release
from qaflow.pipeline.worker import Worker, decode_records, origin_of


class RetryWorker(Worker):
    def __init__(
        self,
        consumer: Consumer,
        producer: Producer,
        max_delivery_attempts: int,
        *,
        max_waiting: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__("retry", consumer, producer, lambda batch: [], max_records=500)
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
        return not self._heap

    @property
    def waiting(self) -> int:
        return len(self._heap)

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def step(self, timeout_s: float = 1.0) -> int:
        due = self.next_due()
        wait_s = timeout_s if due is None else max(0.0, min(timeout_s, due - self.clock()))
        records = [] if self._paused else self.consumer.poll(wait_s, self.max_records)
        if self._paused and wait_s:
            time.sleep(min(wait_s, 0.2))
        ok, bad = decode_records(records, self.stage)
        self.publish(bad)
        queued = {(rec.tp, rec.offset) for rec, _ in ok}
        for rec in records:
            self.tracker.started(rec.tp, rec.offset)
            if (rec.tp, rec.offset) not in queued:
                self.tracker.finished(rec.tp, rec.offset)
        for rec, msg in ok:
            heapq.heappush(self._heap, (msg.not_before, next(self._seq), rec, msg))
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
        while self._heap and is_due(self._heap[0][3], now):
            _, _, rec, msg = heapq.heappop(self._heap)
            outputs.append(release(msg, self.max_delivery_attempts, origin_of(rec)))
            done.append(rec)
        self.publish(outputs)  # durable before the offsets move
        for rec in done:
            self.tracker.finished(rec.tp, rec.offset)
        self.released += len(done)
        self.processed += len(done)
        return len(done)

    def _apply_backpressure(self) -> None:
        assigned: Any = sorted(self.consumer.assignment())
        if not self._paused and len(self._heap) >= self.max_waiting:
            self.consumer.pause(assigned)
            self._paused = True
        elif self._paused and len(self._heap) < self.max_waiting // 2:
            self.consumer.resume(assigned)
            self._paused = False
