"""The message bus seam: topics of partitioned records, producers, consumer groups.

Two-phase life: constructors store settings, ``start()`` connects. Semantics every
backend honours (the contract suite in tests/contract checks them):

- records with the same key land in the same partition, in order;
- ``send`` is asynchronous; ``flush`` returns only when every record sent so far is
  durable, and raises if any failed;
- a consumer reads from its group's committed offsets (earliest when none), and
  ``commit`` stores, per partition, the next offset to read. Records polled but not
  committed are delivered again to the next consumer of the group;
- ``read_since`` reads, outside any group, the records of some topics stamped from one time
  (to another, when given; a stage rebuilding what it emitted before a crash).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from qaflow.core.offsets import TopicPartition
from qaflow.core.topics import TopicSpec


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    timestamp_ms: int = 0

    @property
    def tp(self) -> TopicPartition:
        return (self.topic, self.partition)


class Producer(Protocol):
    def start(self) -> None: ...

    def send(self, topic: str, key: str | None, value: bytes) -> None: ...

    def flush(self, timeout_s: float | None = None) -> None: ...

    def close(self) -> None: ...


class Consumer(Protocol):
    def start(self) -> None: ...

    def poll(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]: ...

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None: ...

    def pause(self, partitions: Sequence[TopicPartition]) -> None: ...

    def resume(self, partitions: Sequence[TopicPartition]) -> None: ...

    def seek(self, tp: TopicPartition, offset: int) -> None: ...

    def assignment(self) -> set[TopicPartition]: ...

    def close(self) -> None: ...


class Bus(Protocol):
    url: str

    def start(self) -> None: ...

    def ensure_topics(self, specs: Sequence[TopicSpec]) -> None: ...

    def producer(self, client_id: str = "qaflow") -> Producer: ...

    def consumer(self, group: str, topics: Sequence[str], client_id: str = "qaflow") -> Consumer: ...

    def read_since(self, topics: Sequence[str], since_ms: int, until_ms: int | None = None) -> Iterator[Record]: ...

    def close(self) -> None: ...
