"""Which offsets are safe to commit when records finish out of order.

A worker with N calls in flight finishes records in any order. It may only commit, per
partition, up to the lowest record still unfinished; so a crash re-delivers unfinished
work and never skips it.
"""

from __future__ import annotations

from collections import defaultdict

TopicPartition = tuple[str, int]


class OffsetTracker:
    def __init__(self) -> None:
        self._pending: dict[TopicPartition, set[int]] = defaultdict(set)
        self._high: dict[TopicPartition, int] = {}  # highest offset seen + 1
        self._committed: dict[TopicPartition, int] = {}

    def started(self, tp: TopicPartition, offset: int) -> None:
        self._pending[tp].add(offset)
        self._high[tp] = max(self._high.get(tp, 0), offset + 1)

    def finished(self, tp: TopicPartition, offset: int) -> None:
        self._pending[tp].discard(offset)

    def in_flight(self) -> int:
        return sum(len(p) for p in self._pending.values())

    def committable(self) -> dict[TopicPartition, int]:
        """Next offset to commit per partition, only where it moved since the last call."""
        out: dict[TopicPartition, int] = {}
        for tp, high in self._high.items():
            pending = self._pending.get(tp)
            nxt = min(pending) if pending else high
            if nxt > self._committed.get(tp, -1):
                out[tp] = nxt
                self._committed[tp] = nxt
        return out

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Drop revoked partitions: their unfinished records will be re-delivered elsewhere."""
        for tp in partitions:
            self._pending.pop(tp, None)
            self._high.pop(tp, None)
            self._committed.pop(tp, None)
