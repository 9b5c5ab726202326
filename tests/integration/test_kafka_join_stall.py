"""A group join that finishes between two polls is still applied (kafka-python 3.0.12 stall).

The mechanism behind the ``qaflow run`` over Kafka stall: a consumer's first assignment is
empty (its topic had no partition metadata yet: "No partition metadata for topic ..."); when
the metadata arrives, the consumer rejoins, and if that JoinGroup/SyncGroup outlives the poll
that started it, kafka-python records the new assignment's metadata snapshot but, on the next
poll, sees no reason to rejoin and never applies the finished join: the member stays in the
group, heartbeating, with no partitions, for good. Here the poll's time is used up by a slow
rebalance listener (as a pre-revocation commit under load does), which makes the interleaving
certain instead of rare.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from qaflow.bus import kafka_consumer
from qaflow.bus.kafka import KafkaBus
from qaflow.core.settings import BackendSettings
from qaflow.core.topics import TopicSpec

FAST_GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 500, "max_poll_interval_ms": 20_000}


@pytest.mark.integration
@pytest.mark.parametrize("grace_s", [kafka_consumer.JOIN_GRACE_S, 0.0], ids=["grace", "rejoin-only"])
def test_a_consumer_subscribed_before_its_topic_exists_gets_its_partitions_once_it_does(
    kafka_bootstrap: str, unique_name: str, monkeypatch: pytest.MonkeyPatch, grace_s: float
) -> None:
    """With the grace, the poll after the slow listener awaits the join itself; without it
    (``rejoin-only``), the join finishes between polls and only the requested rejoin saves it."""
    monkeypatch.setattr(kafka_consumer, "JOIN_GRACE_S", grace_s)
    revocations: list[set[Any]] = []
    assignments: list[set[Any]] = []
    revoke, assign = kafka_consumer._Listener.on_partitions_revoked, kafka_consumer._Listener.on_partitions_assigned

    async def slow_revoke(self: Any, revoked: Any) -> None:
        revocations.append(set(revoked))
        time.sleep(0.3)  # longer than the poll: the rejoin it precedes outlives that poll
        await revoke(self, revoked)

    async def note_assign(self: Any, assigned: Any) -> None:
        assignments.append(set(assigned))
        await assign(self, assigned)

    monkeypatch.setattr(kafka_consumer._Listener, "on_partitions_revoked", slow_revoke)
    monkeypatch.setattr(kafka_consumer._Listener, "on_partitions_assigned", note_assign)
    url = f"kafka://{kafka_bootstrap}"
    bus = KafkaBus(url, BackendSettings(bus_url=url, kafka_client="kafka-python"), consumer_options=FAST_GROUP)
    topic = f"{unique_name}.late"
    consumer = bus.consumer(f"{unique_name}_g", [topic])
    consumer.start()
    producer = None
    try:
        deadline = time.monotonic() + 20
        while not assignments:  # joined once, with nothing to assign (the topic is missing)
            assert time.monotonic() < deadline, "the consumer never joined its group"
            consumer.poll(0.1)
        # Joined with nothing to assign; under load a metadata refresh may make it join again, still empty.
        assert all(a == set() for a in assignments), assignments

        bus.ensure_topics([TopicSpec(topic, 2, 3_600_000)])
        producer = bus.producer()
        producer.start()
        producer.send(topic, "k", b"hello")
        producer.flush(30)

        got: list[bytes] = []
        deadline = time.monotonic() + 30
        while not got and time.monotonic() < deadline:
            got = [r.value for r in consumer.poll(0.1)]
            time.sleep(0.1)  # the other stages' polls, in a runner that polls several consumers
        assert got == [b"hello"], (
            f"no record in 30 s; assignment {sorted(consumer.assignment())}, "
            f"{len(revocations)} rebalance(s) started, {len(assignments)} applied"
        )
        assert consumer.assignment() == {(topic, 0), (topic, 1)}
        if not grace_s:
            assert consumer.joins_resumed >= 1, "the join was applied without the requested rejoin"
    finally:
        consumer.close()
        if producer is not None:
            producer.close()
