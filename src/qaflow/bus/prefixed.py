"""A namespace over any bus: stages use the logical topic names in ``core.topics``; the
broker sees ``<prefix><name>`` for topics and consumer groups alike. Lets several installs
(or tests) share one Kafka."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace

from qaflow.bus.base import Bus, Consumer, Producer, Record
from qaflow.core.offsets import TopicPartition
from qaflow.core.topics import TopicSpec


class _Names:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def out(self, topic: str) -> str:
        return self.prefix + topic

    def back(self, topic: str) -> str:
        return topic.removeprefix(self.prefix)

    def tp_out(self, tp: TopicPartition) -> TopicPartition:
        return (self.out(tp[0]), tp[1])

    def tp_back(self, tp: TopicPartition) -> TopicPartition:
        return (self.back(tp[0]), tp[1])


class PrefixedProducer:
    def __init__(self, inner: Producer, names: _Names) -> None:
        self.inner = inner
        self.names = names

    def start(self) -> None:
        self.inner.start()

    def send(self, topic: str, key: str | None, value: bytes) -> None:
        self.inner.send(self.names.out(topic), key, value)

    def flush(self, timeout_s: float | None = None) -> None:
        self.inner.flush(timeout_s)

    def wait_delivered(self, timeout_s: float | None = None) -> None:
        """The inner producer's ``wait_delivered`` where it has one (Kafka), else its ``flush``."""
        getattr(self.inner, "wait_delivered", self.inner.flush)(timeout_s)

    def close(self) -> None:
        self.inner.close()


class PrefixedConsumer:
    def __init__(self, inner: Consumer, names: _Names) -> None:
        self.inner = inner
        self.names = names

    def start(self) -> None:
        self.inner.start()

    def poll(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]:
        return [replace(r, topic=self.names.back(r.topic)) for r in self.inner.poll(timeout_s, max_records)]

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.inner.commit({self.names.tp_out(tp): off for tp, off in offsets.items()})

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        self.inner.pause([self.names.tp_out(tp) for tp in partitions])

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        self.inner.resume([self.names.tp_out(tp) for tp in partitions])

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.inner.seek(self.names.tp_out(tp), offset)

    def assignment(self) -> set[TopicPartition]:
        return {self.names.tp_back(tp) for tp in self.inner.assignment()}

    # Optional extras of some backends (Kafka): evictions seen, broker connection state.
    @property
    def partitions_lost(self) -> int:
        return int(getattr(self.inner, "partitions_lost", 0))

    def set_revoke_hook(self, hook: Callable[[set[TopicPartition]], Mapping[TopicPartition, int]]) -> None:
        """Passed on to backends that rebalance (Kafka), translating the topic names both ways."""
        set_inner = getattr(self.inner, "set_revoke_hook", None)
        if set_inner is None:
            return

        def inner_hook(partitions: set[TopicPartition]) -> dict[TopicPartition, int]:
            taken = hook({self.names.tp_back(tp) for tp in partitions})
            return {self.names.tp_out(tp): off for tp, off in taken.items()}

        set_inner(inner_hook)

    def committed_ms(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """The inner consumer's commit times where it records them (Kafka), else none."""
        inner = getattr(self.inner, "committed_ms", None)
        if inner is None:
            return {}
        found = inner([self.names.tp_out(tp) for tp in partitions])
        return {self.names.tp_back(tp): ms for tp, ms in found.items()}

    def connected(self) -> bool:
        check = getattr(self.inner, "connected", None)
        return True if check is None else bool(check())

    def close(self) -> None:
        self.inner.close()


class PrefixedBus:
    def __init__(self, inner: Bus, prefix: str) -> None:
        self.inner = inner
        self.url = inner.url
        self.names = _Names(prefix)

    def start(self) -> None:
        self.inner.start()

    def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        self.inner.ensure_topics([replace(s, name=self.names.out(s.name)) for s in specs])

    def read_since(self, topics: Sequence[str], since_ms: int, until_ms: int | None = None) -> Iterator[Record]:
        for r in self.inner.read_since([self.names.out(t) for t in topics], since_ms, until_ms):
            yield replace(r, topic=self.names.back(r.topic))

    def producer(self, client_id: str = "qaflow") -> PrefixedProducer:
        return PrefixedProducer(self.inner.producer(client_id), self.names)

    def consumer(self, group: str, topics: Sequence[str], client_id: str = "qaflow") -> PrefixedConsumer:
        inner = self.inner.consumer(self.names.out(group), [self.names.out(t) for t in topics], client_id)
        return PrefixedConsumer(inner, self.names)

    def close(self) -> None:
        self.inner.close()
