"""A worker that commits at an interval commits what it holds before a rebalance moves its
partitions: the new owner starts after the records already handled instead of re-delivering
them (Kafka: the consumer's rebalance listener awaits the commit on its I/O thread)."""

from __future__ import annotations

import time

import pytest

from qaflow.bus.kafka import KafkaBus
from qaflow.bus.prefixed import PrefixedBus
from qaflow.core import topics
from qaflow.core.messages import QuestionMessage
from qaflow.core.settings import BackendSettings
from qaflow.core.topics import TopicSpec
from qaflow.pipeline.outputs import Output
from qaflow.pipeline.worker import Worker

FAST_GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 500, "max_poll_interval_ms": 20_000}
N = 40


@pytest.mark.integration
def test_offsets_waiting_for_the_interval_are_committed_when_the_partitions_are_revoked(
    kafka_bootstrap: str, unique_name: str
) -> None:
    url = f"kafka://{kafka_bootstrap}"
    bus = PrefixedBus(KafkaBus(url, BackendSettings(bus_url=url), consumer_options=FAST_GROUP), f"{unique_name}.")
    bus.start()
    bus.ensure_topics([TopicSpec(topics.QUESTIONS, 2, 3_600_000), TopicSpec("copy", 2, 3_600_000)])
    producer = bus.producer()
    producer.start()
    for i in range(N):
        q = QuestionMessage.new(f"{unique_name} question {i}", "", "a reference answer")
        producer.send(topics.QUESTIONS, q.question_id, q.encode())
    producer.flush(30)
    producer.close()

    group = f"{unique_name}_copy"
    worker = Worker(
        "copy",
        bus.consumer(group, [topics.QUESTIONS]),
        bus.producer(),
        lambda batch: [Output("copy", rec.key, rec.value) for rec, _ in batch],
        commit_interval_s=3600.0,  # never by the clock: only the revocation can commit
    )
    newcomer = bus.consumer(group, [topics.QUESTIONS])
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while worker.processed < N:
            assert time.monotonic() < deadline, f"only {worker.processed} of {N} handled"
            worker.step(0.5)  # an empty poll would commit everything: stop as soon as all are handled
        worker.flush_outbox()  # the copies acknowledged; their offsets wait for the interval
        assert worker._uncommitted, "nothing left waiting: the test would prove nothing"

        # A second member joins; the first takes part in the rebalance by polling its consumer
        # directly (Worker.step would commit on an empty poll).
        newcomer.start()
        redelivered = []
        deadline = time.monotonic() + 60
        while not newcomer.assignment() and time.monotonic() < deadline:
            redelivered += newcomer.poll(0.2, 500)
            assert worker.consumer.poll(0.2, 500) == []  # everything was handled already
        assert newcomer.assignment(), "the group never rebalanced"
        end = time.monotonic() + 3
        while time.monotonic() < end:
            redelivered += newcomer.poll(0.2, 500)
            worker.consumer.poll(0.0, 500)
        assert not worker._uncommitted
        assert redelivered == [], f"{len(redelivered)} handled record(s) delivered again to the new owner"
    finally:
        newcomer.close()
        worker.close()
        bus.close()
