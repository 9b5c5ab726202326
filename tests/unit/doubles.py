"""Test doubles shared by the unit tests: a producer that counts, and a memory bus seeded with questions."""

from __future__ import annotations

from qaflow.bus.base import Producer
from qaflow.bus.memory import MemoryBus
from qaflow.core import topics
from qaflow.core.errors import DeliveryError
from qaflow.core.messages import QuestionMessage


class CountingProducer:
    """Wraps a producer; counts sends and flushes, and fails the next ``fail_flushes`` flushes
    with a retriable :class:`DeliveryError` (the records stay sent, as a broker that did not
    acknowledge them would leave them)."""

    def __init__(self, inner: Producer, fail_flushes: int = 0) -> None:
        self.inner = inner
        self.sends = 0
        self.flushes = 0
        self.fail_flushes = fail_flushes

    def start(self) -> None:
        self.inner.start()

    def send(self, topic: str, key: str | None, value: bytes) -> None:
        self.sends += 1
        self.inner.send(topic, key, value)

    def flush(self, timeout_s: float | None = None) -> None:
        self.flushes += 1
        if self.fail_flushes:
            self.fail_flushes -= 1
            msg = "not acknowledged (test)"
            raise DeliveryError(msg, retriable=True)

    def close(self) -> None:
        self.inner.close()


def seeded_bus(name: str, n: int) -> MemoryBus:
    """A fresh one-partition memory bus named ``name`` with ``n`` questions on qa.questions."""
    MemoryBus.reset(name)
    bus = MemoryBus(f"memory://{name}", partitions=1)
    bus.start()
    source = bus.producer()
    for i in range(n):
        q = QuestionMessage.new(f"question {i}", "", "ref")
        source.send(topics.QUESTIONS, q.question_id, q.encode())
    return bus
