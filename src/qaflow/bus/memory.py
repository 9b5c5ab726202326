"""An in-memory bus with Kafka's semantics (partitions, groups, committed offsets).

Used by the embedded pipeline and by tests; one process only. Several consumers of one
group split the partitions between them, as Kafka would.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from qaflow.bus.base import Record
from qaflow.core.offsets import TopicPartition
from qaflow.core.topics import TopicSpec

if TYPE_CHECKING:
    from qaflow.core.settings import BackendSettings


def partition_for(key: str | None, partitions: int, counter: int) -> int:
    if key is None:
        return counter % partitions
    return zlib.crc32(key.encode("utf-8")) % partitions


class _Broker:
    def __init__(self, default_partitions: int) -> None:
        self.default_partitions = default_partitions
        self.logs: dict[str, list[list[Record]]] = {}
        self.committed: dict[str, dict[TopicPartition, int]] = defaultdict(dict)
        self.members: dict[str, list[MemoryConsumer]] = defaultdict(list)
        self.cond = threading.Condition()
        self._counter = 0

    def ensure(self, name: str, partitions: int | None = None) -> list[list[Record]]:
        if name not in self.logs:
            self.logs[name] = [[] for _ in range(partitions or self.default_partitions)]
        return self.logs[name]

    def append(self, topic: str, key: str | None, value: bytes) -> None:
        with self.cond:
            log = self.ensure(topic)
            self._counter += 1
            p = partition_for(key, len(log), self._counter)
            rec = Record(topic, p, len(log[p]), key, value, int(time.time() * 1000))
            log[p].append(rec)
            self.cond.notify_all()

    def rebalance(self, group: str) -> None:
        members = self.members[group]
        topics = sorted({t for m in members for t in m.topics})
        tps = [(t, p) for t in topics for p in range(len(self.ensure(t)))]
        for m in members:
            m.assigned = set()
        for i, tp in enumerate(tps):
            eligible = [m for m in members if tp[0] in m.topics]
            if eligible:
                eligible[i % len(eligible)].assigned.add(tp)
        for m in members:
            m.positions = {tp: self.committed[group].get(tp, 0) for tp in m.assigned}


class MemoryProducer:
    def __init__(self, broker: _Broker) -> None:
        self._broker = broker

    def start(self) -> None:
        pass

    def send(self, topic: str, key: str | None, value: bytes) -> None:
        self._broker.append(topic, key, value)

    def flush(self, timeout_s: float | None = None) -> None:
        pass  # appends are synchronous

    def close(self) -> None:
        pass


class MemoryConsumer:
    def __init__(self, broker: _Broker, group: str, topics: Sequence[str]) -> None:
        self._broker = broker
        self.group = group
        self.topics = list(topics)
        self.assigned: set[TopicPartition] = set()
        self.positions: dict[TopicPartition, int] = {}
        self.paused: set[TopicPartition] = set()

    def start(self) -> None:
        with self._broker.cond:
            for t in self.topics:
                self._broker.ensure(t)
            self._broker.members[self.group].append(self)
            self._broker.rebalance(self.group)

    def _take(self, max_records: int) -> list[Record]:
        out: list[Record] = []
        for tp in sorted(self.assigned - self.paused):
            log = self._broker.logs[tp[0]][tp[1]]
            pos = self.positions[tp]
            chunk = log[pos : pos + max_records - len(out)]
            out.extend(chunk)
            self.positions[tp] = pos + len(chunk)
            if len(out) >= max_records:
                break
        return out

    def poll(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]:
        deadline = time.monotonic() + timeout_s
        with self._broker.cond:
            while True:
                got = self._take(max_records)
                remaining = deadline - time.monotonic()
                if got or remaining <= 0:
                    return got
                self._broker.cond.wait(remaining)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        with self._broker.cond:
            self._broker.committed[self.group].update({tp: off for tp, off in offsets.items() if tp in self.assigned})

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        self.paused.update(partitions)

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        self.paused.difference_update(partitions)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp in self.assigned:
            self.positions[tp] = offset

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def lag(self) -> int:
        with self._broker.cond:
            return sum(len(self._broker.logs[t][p]) - self.positions[(t, p)] for t, p in self.assigned)

    def close(self) -> None:
        with self._broker.cond:
            members = self._broker.members[self.group]
            if self in members:
                members.remove(self)
                self._broker.rebalance(self.group)


class MemoryBus:
    """``memory://``. Buses opened with the same name share one broker in this process."""

    _brokers: dict[str, _Broker] = {}
    _lock = threading.Lock()

    def __init__(self, url: str = "memory://", settings: BackendSettings | None = None, *,
                 partitions: int | None = None) -> None:
        self.url = url
        self._name = url.removeprefix("memory://")
        self._partitions = partitions or (settings.kafka_partitions if settings is not None else 3)
        self._broker: _Broker | None = None

    def start(self) -> None:
        with MemoryBus._lock:
            self._broker = MemoryBus._brokers.setdefault(self._name, _Broker(self._partitions))

    @property
    def broker(self) -> _Broker:
        if self._broker is None:
            msg = "MemoryBus.start() was not called"
            raise RuntimeError(msg)
        return self._broker

    def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        with self.broker.cond:
            for spec in specs:
                self.broker.ensure(spec.name, spec.partitions)

    def producer(self, client_id: str = "qaflow") -> MemoryProducer:
        return MemoryProducer(self.broker)

    def consumer(self, group: str, topics: Sequence[str], client_id: str = "qaflow") -> MemoryConsumer:
        return MemoryConsumer(self.broker, group, topics)

    def read_since(self, topics: Sequence[str], since_ms: int, until_ms: int | None = None) -> Iterator[Record]:
        """The records of ``topics`` stamped from ``since_ms`` to ``until_ms`` (ms since the epoch,
        both included; no upper bound when None), as they are now; missing topics are skipped."""
        top = until_ms if until_ms is not None else float("inf")
        with self.broker.cond:
            logs = [part for t in topics for part in self.broker.logs.get(t, [])]
            found = [r for part in logs for r in part if since_ms <= r.timestamp_ms <= top]
        return iter(found)

    def end_offsets(self, topic: str) -> list[int]:
        with self.broker.cond:
            return [len(p) for p in self.broker.ensure(topic)]

    def close(self) -> None:
        pass

    @classmethod
    def reset(cls, name: str = "") -> None:
        """Forget a named broker (tests)."""
        with cls._lock:
            cls._brokers.pop(name, None)
