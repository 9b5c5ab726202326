"""The api's enqueue guard: a down broker is refused at once, a slow one is waited for (bounded)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from qaflow.core.errors import DeliveryError
from qaflow.services.api.enqueue import BoundedProducer, BrokerProbe


class FakeProducer:
    def __init__(self, fail: BaseException | None = None) -> None:
        self.sent: list[tuple[str, str | None, bytes]] = []
        self.flush_timeouts: list[float | None] = []
        self.fail = fail

    def start(self) -> None:
        pass

    def send(self, topic: str, key: str | None, value: bytes) -> None:
        self.sent.append((topic, key, value))

    def flush(self, timeout_s: float | None = None) -> None:
        self.flush_timeouts.append(timeout_s)
        if self.fail is not None:
            raise self.fail

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def listener() -> Any:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock
    sock.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_probe_sees_a_listener_and_caches_its_answer(listener: socket.socket) -> None:
    clock = Clock()
    port = listener.getsockname()[1]
    probe = BrokerProbe([f"127.0.0.1:{_closed_port()}", f"127.0.0.1:{port}"], ttl_s=0.5, clock=clock)
    assert probe.reachable()  # one of the two is enough
    listener.close()
    assert probe.reachable()  # cached
    clock.now = 0.6
    assert not probe.reachable()


def test_a_down_broker_is_refused_before_anything_is_sent() -> None:
    inner = FakeProducer()
    producer = BoundedProducer(inner, 3.0, BrokerProbe([f"127.0.0.1:{_closed_port()}"]))
    with pytest.raises(DeliveryError) as caught:
        producer.send("qa.questions", "k", b"v")
    assert caught.value.retriable
    assert inner.sent == []
    assert producer.health == "unavailable (broker not reachable)"


def test_a_reachable_broker_gets_the_whole_budget(listener: socket.socket) -> None:
    inner = FakeProducer()
    producer = BoundedProducer(inner, 3.0, BrokerProbe([f"127.0.0.1:{listener.getsockname()[1]}"]))
    producer.send("qa.questions", "k", b"v")
    producer.flush()
    producer.flush(60)
    assert inner.flush_timeouts == [3.0, 3.0]  # never unbounded, never longer than the budget
    assert producer.health == "ok"


def test_a_timeout_marks_the_bus_unavailable_until_a_success() -> None:
    producer = BoundedProducer(FakeProducer(DeliveryError("not acknowledged", retriable=True)), 3.0)
    producer.send("t", None, b"v")
    with pytest.raises(DeliveryError):
        producer.flush()
    assert producer.health.startswith("unavailable (last enqueue failed: DeliveryError")
    producer.inner = FakeProducer()
    producer.flush()
    assert producer.health == "ok"


def test_kafka_client_errors_are_retriable_delivery_errors_and_bugs_stay_bugs() -> None:
    import kafka.errors as kerrors

    kafka_failure = BoundedProducer(FakeProducer(kerrors.KafkaConnectionError("refused")), 3.0)
    with pytest.raises(DeliveryError) as caught:
        kafka_failure.flush()
    assert caught.value.retriable
    bug = BoundedProducer(FakeProducer(TypeError("a bug")), 3.0)
    with pytest.raises(TypeError):
        bug.flush()
