"""The worker services as processes, started from the catalog as their containers start,
against a real Kafka (a topic prefix per test) and PostgreSQL."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import requests

from qaflow.bus import open_bus
from qaflow.bus.base import Bus, Record
from qaflow.core import topics
from qaflow.core.errors import ErrorClass
from qaflow.core.messages import AnswerMessage, QuestionMessage, RetryMessage, decode_for_topic
from qaflow.core.settings import BackendSettings
from qaflow.devstack import PostgresServer
from qaflow.devstack.catalog import SERVICES, Backends, ServiceProcess, environment
from qaflow.devstack.ports import free_port
from qaflow.llm.fake_server import FakeLlmServer

pytestmark = pytest.mark.integration

REFERENCE = "Sunlight scatters off the molecules of the air, and blue light scatters the most."
# QAFLOW_KAFKA_CLIENT in the test run's environment reaches the services (the harness passes on no
# other QAFLOW_* variable): `QAFLOW_KAFKA_CLIENT=confluent-kafka pytest tests/services` runs them on it.
KAFKA_CLIENT = {k: v for k, v in os.environ.items() if k == "QAFLOW_KAFKA_CLIENT"}
FAST = {"QAFLOW_LOG_FORMAT": "text", "QAFLOW_SHUTDOWN_GRACE_S": "10", **KAFKA_CLIENT}


class Harness:
    """A prefixed bus for the test's own records, and the service processes it starts."""

    def __init__(self, bootstrap: str, prefix: str, logs: Path, store_url: str = "", cache_url: str = "none://"):
        self.backends = Backends(f"kafka://{bootstrap}", store_url, cache_url, prefix)
        self.bus: Bus = open_bus(self.backends.bus_url,
                                 BackendSettings(bus_url=self.backends.bus_url, topic_prefix=prefix))
        self.bus.start()
        self.bus.ensure_topics(topics.default_specs(3))
        self.producer = self.bus.producer()
        self.producer.start()
        self.logs = logs
        self.procs: list[ServiceProcess] = []

    def send(self, topic: str, key: str, value: bytes) -> None:
        self.producer.send(topic, key, value)
        self.producer.flush()

    def start(self, name: str, **env: str) -> ServiceProcess:
        spec = SERVICES[name]
        proc = ServiceProcess(
            spec,
            environment(spec, self.backends, port=free_port(), config={**FAST, **env}),
            self.logs / f"{name}.log",
        ).start()
        self.procs.append(proc)
        return proc

    def collect(
        self, topic_names: list[str], done: Callable[[list[Record]], bool], timeout_s: float = 60
    ) -> list[Record]:
        consumer = self.bus.consumer(f"test-{uuid.uuid4().hex[:6]}", topic_names)
        consumer.start()
        got: list[Record] = []
        deadline = time.monotonic() + timeout_s
        try:
            while not done(got) and time.monotonic() < deadline:
                got.extend(consumer.poll(0.5, 500))
        finally:
            consumer.close()
        return got

    def close(self) -> None:
        for p in self.procs:
            p.stop(grace_s=15)
            print(p.tail(25))  # shown by pytest only when the test fails
        self.producer.close()
        self.bus.close()


@pytest.fixture
def harness(kafka_bootstrap: str, unique_name: str, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(kafka_bootstrap, f"{unique_name}.", tmp_path / "logs")
    yield h
    h.close()


def metric(url: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(requests.get(url + "/metrics", timeout=5).text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def committed(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        found = admin.list_group_offsets({group: None}).get(group, {})
        return {(tp.topic, tp.partition): om.offset for tp, om in found.items()}
    finally:
        admin.close()


def test_llm_worker_answers_each_question_once_and_drains_on_sigterm(harness: Harness, kafka_bootstrap: str) -> None:
    questions = [QuestionMessage.new(f"Why is the sky blue, take {i}?", "", REFERENCE) for i in range(40)]
    for q in questions:
        harness.send(topics.QUESTIONS, q.question_id, q.encode())
    with FakeLlmServer(latency_ms=40, rate_429=0.15, retry_after_s=1, rate_503=0.1, seed=7) as fake:
        worker = harness.start("llm-worker", QAFLOW_LLM_PROVIDER="openai", QAFLOW_LLM_BASE_URL=fake.url,
                               QAFLOW_LLM_CONCURRENCY="8", QAFLOW_AIMD_RECOVER_AFTER_S="2")
        worker.wait_ready(60)
        wanted = {q.question_id for q in questions}
        out = harness.collect(
            [topics.ANSWERS, topics.RETRY_QUOTA, topics.RETRY_OVERLOAD, topics.DEAD_LETTER],
            lambda got: {r.key for r in got} >= wanted,
        )
        stats = fake.stats()
        calls = metric(worker.url, "qaflow_llm_calls_total")
        quota = metric(worker.url, "qaflow_llm_calls_total", outcome="error", error_class="quota")
        pauses = metric(worker.url, "qaflow_llm_rate_limit_waits_total", reason="retry_after")
        limit_max = metric(worker.url, "qaflow_llm_concurrency_max")
        assert worker.stop(grace_s=15) == 0  # SIGTERM: drained and exited cleanly

    per_question = Counter(r.key for r in out)
    assert set(per_question) == wanted
    assert set(per_question.values()) == {1}, "one outcome per question: an answer or a classified retry"
    by_topic = Counter(r.topic for r in out)
    assert by_topic[topics.ANSWERS] == stats["by_status"].get("200", 0)
    assert by_topic[topics.RETRY_QUOTA] == stats["by_status"].get("429", 0) == quota > 0
    assert by_topic[topics.RETRY_OVERLOAD] == stats["by_status"].get("503", 0)
    assert calls == 40 and limit_max == 8
    # 15% scattered 429s (never half of the AIMD window) are noise, not a quota: no call was
    # held back for everyone, each 429 waits its own Retry-After on qa.retry.quota (issue 10).
    assert pauses == 0
    assert stats["max_concurrent"] <= 8
    for r in out:
        if r.topic == topics.RETRY_QUOTA:
            retry = decode_for_topic(r.topic, r.value)
            assert isinstance(retry, RetryMessage) and retry.error_class is ErrorClass.QUOTA
    # Every record was committed: a restart would not answer anything again.
    offsets = committed(kafka_bootstrap, harness.backends.topic_prefix + "qaflow-llm-worker")
    assert sum(offsets.values()) == 40


def test_retry_and_score_workers_route_by_time_and_by_score(harness: Harness) -> None:
    retry = harness.start("retry-worker", QAFLOW_MAX_DELIVERY_ATTEMPTS="3")
    score = harness.start("score-worker", QAFLOW_SCORER="lexical", QAFLOW_THRESHOLD="0.8",
                          QAFLOW_MAX_GENERATIONS="2")
    q = QuestionMessage.new("Why is the sky blue?", "", REFERENCE)
    due = time.time() + 1.5
    harness.send(topics.RETRY_OVERLOAD, q.question_id,
                 RetryMessage(question=q, error_class=ErrorClass.OVERLOAD, error="503", not_before=due).encode())
    last = QuestionMessage.new("Last try?", "", REFERENCE).model_copy(update={"delivery": 3})
    harness.send(topics.RETRY_QUOTA, last.question_id,
                 RetryMessage(question=last, error_class=ErrorClass.QUOTA, error="429", not_before=0).encode())
    good = AnswerMessage(question=QuestionMessage.new("Good?", "", REFERENCE), answer=REFERENCE, model="m",
                         provider="p", latency_ms=1)
    poor = AnswerMessage(question=QuestionMessage.new("Poor?", "", REFERENCE), answer="No idea at all.",
                         model="m", provider="p", latency_ms=1)
    for a in (good, poor):
        harness.send(topics.ANSWERS, a.question_id, a.encode())
    retry.wait_ready(60)
    score.wait_ready(60)

    got = harness.collect(
        [topics.QUESTIONS, topics.DEAD_LETTER, topics.RESULTS, topics.SCORES],
        lambda got: len(got) >= 6,
    )
    seen = {(r.topic, decode_for_topic(r.topic, r.value).question_id) for r in got}  # type: ignore[attr-defined]
    assert seen == {
        (topics.QUESTIONS, q.question_id),  # released after its delay, delivery 2
        (topics.DEAD_LETTER, last.question_id),  # delivery cap reached
        (topics.SCORES, good.question_id),
        (topics.RESULTS, good.question_id),  # validated
        (topics.SCORES, poor.question_id),
        (topics.QUESTIONS, poor.question_id),  # regenerate: generation 2
    }
    by_key: dict[tuple[str, str], Any] = {(r.topic, r.key or ""): decode_for_topic(r.topic, r.value) for r in got}
    released = by_key[(topics.QUESTIONS, q.question_id)]
    assert released.delivery == 2 and released.generation == 1
    assert next(r for r in got if r.key == q.question_id).timestamp_ms / 1000 >= due - 0.05
    assert by_key[(topics.QUESTIONS, poor.question_id)].generation == 2
    assert by_key[(topics.RESULTS, good.question_id)].status == "validated"
    assert metric(retry.url, "qaflow_retry_released_total", outcome="requeued") == 1
    assert metric(retry.url, "qaflow_retry_released_total", outcome="dead_letter") == 1
    assert metric(score.url, "qaflow_score_routed_total", route="result") == 1


def test_storage_writer_waits_out_a_missing_database_then_writes(
    harness: Harness, postgres_server: PostgresServer, unique_name: str
) -> None:
    from qaflow.core.messages import ResultMessage, Status

    name = f"qa_{unique_name}"
    url = postgres_server.url_for(name)  # not created yet: connections fail
    harness.backends = Backends(harness.backends.bus_url, url, "none://", harness.backends.topic_prefix)
    q = QuestionMessage.new("Stored later?", "", REFERENCE)
    r = ResultMessage(question_id=q.question_id, status=Status.VALIDATED, title=q.title, reference_answer=REFERENCE,
                      answer="An answer.", score=0.91, best_generation=1, generations=1, model="m",
                      submitted_at=q.submitted_at)
    harness.send(topics.RESULTS, r.question_id, r.encode())
    writer = harness.start("storage-writer")
    try:
        deadline = time.monotonic() + 30
        while "store unavailable" not in writer.log_path.read_text(errors="replace"):
            assert writer.running() and time.monotonic() < deadline, writer.tail()
            time.sleep(0.2)
        assert requests.get(writer.url + "/healthz", timeout=5).status_code == 200  # alive: no crash loop
        assert requests.get(writer.url + "/readyz", timeout=5).status_code == 503  # but not ready
        assert metric(writer.url, "qaflow_store_unavailable") == 1

        postgres_server.create_database(name)
        writer.wait_ready(45)
        row = None
        deadline = time.monotonic() + 45
        while row is None and time.monotonic() < deadline:
            conn = psycopg2.connect(url)
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT status, score FROM results WHERE question_id = %s", (r.question_id,))
                    row = cur.fetchone()
            except psycopg2.Error:
                pass  # the writer is still applying the migrations
            finally:
                conn.close()
            time.sleep(0.3)
        assert row == ("validated", 0.91)
        assert metric(writer.url, "qaflow_store_unavailable") == 0
        assert writer.stop(grace_s=15) == 0
    finally:
        writer.stop(grace_s=5)
        postgres_server.drop_database(name)
