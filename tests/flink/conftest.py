"""Fixtures and helpers of the score job tests: topics, records, the job as a process."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from qaflow.core.messages import AnswerMessage, BestAttempt, QuestionMessage
from qaflow.devstack.ports import free_port

OUTPUTS = ("qa.scores", "qa.results", "qa.questions", "qa.dead-letter")
ALL_TOPICS = ("qa.answers", *OUTPUTS)
PARTITIONS = 3


def answer(
    title: str,
    reference: str,
    text: str,
    *,
    generation: int = 1,
    best: BestAttempt | None = None,
    model: str = "test-model",
) -> AnswerMessage:
    q = QuestionMessage.new(title, "", reference).model_copy(update={"generation": generation, "best": best})
    return AnswerMessage(question=q, answer=text, model=model, provider="test", latency_ms=12.5)


class _ConnectorJars:
    """Checkable for ``require_servers``: the jar is fetched (once, cached) or reported missing."""

    jars: list[Path]

    def check(self) -> None:
        from qaflow.devstack import MissingBinaryError
        from qaflow.flinkjob.runner import FlinkRunError, connector_jar, fetch_jars

        try:
            self.jars = fetch_jars()
        except (FlinkRunError, OSError) as exc:
            raise MissingBinaryError(f"Kafka connector jar ({exc})", str(connector_jar().parent)) from exc


@pytest.fixture(scope="session")
def connector_jars(require_servers: Callable[[Any], None]) -> list[Path]:
    """The Kafka SQL connector jar, fetched into the cache if needed (``qaflow flink fetch-jars``)."""
    jars = _ConnectorJars()
    require_servers(jars)
    return jars.jars


@pytest.fixture
def topic_prefix(kafka_bootstrap: str, unique_name: str) -> str:
    """``<unique name>.``; the job's topics under it exist, with 3 partitions each."""
    from kafka.admin import KafkaAdminClient, NewTopic

    prefix = f"{unique_name}."
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="flink-tests")
    try:
        admin.create_topics([NewTopic(prefix + t, PARTITIONS, 1) for t in ALL_TOPICS])
    finally:
        admin.close()
    return prefix


def produce(bootstrap: str, topic: str, records: Sequence[AnswerMessage | bytes]) -> None:
    """Answers keyed by question id, as the llm-worker sends them; raw bytes unkeyed."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for rec in records:
            if isinstance(rec, bytes):
                producer.send(topic, value=rec)
            else:
                producer.send(topic, key=rec.question_id.encode(), value=rec.encode())
        producer.flush(30)
    finally:
        producer.close()


class Outputs:
    """Reads the job's output topics from the start; ``records[topic]`` holds what came so far."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        from kafka import KafkaConsumer

        self.prefix = prefix
        self.records: dict[str, list[Any]] = {t: [] for t in OUTPUTS}
        self._consumer = KafkaConsumer(
            *(prefix + t for t in OUTPUTS),
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )

    def poll(self, seconds: float = 1.0) -> None:
        for batch in self._consumer.poll(timeout_ms=int(seconds * 1000)).values():
            for rec in batch:
                self.records[rec.topic.removeprefix(self.prefix)].append(rec)

    def values(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(r.value) for r in self.records[topic]]

    def wait_for(self, counts: dict[str, int], timeout: float, alive: Callable[[], bool] = lambda: True) -> None:
        """Until every topic holds at least ``counts[topic]`` records, or fail with what came."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if all(len(self.records[t]) >= n for t, n in counts.items()):
                return
            if not alive():
                break
        got = {t: len(v) for t, v in self.records.items()}
        pytest.fail(f"waited {timeout:.0f}s for {counts}, got {got} (job alive: {alive()})")

    def settle(self, seconds: float) -> None:
        """Keep reading for ``seconds``, to catch records that should not come."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.poll(0.5)

    def close(self) -> None:
        self._consumer.close()


@pytest.fixture
def outputs(kafka_bootstrap: str, topic_prefix: str) -> Iterator[Outputs]:
    out = Outputs(kafka_bootstrap, topic_prefix)
    yield out
    out.close()


def job_env() -> dict[str, str]:
    """The test process's environment without QAFLOW_* (the job gets its settings as options)."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("QAFLOW_")}


@pytest.fixture
def start_job(
    kafka_bootstrap: str, topic_prefix: str, unique_name: str, connector_jars: list[Path], tmp_path: Path
) -> Iterator[Callable[..., Any]]:
    """``start_job(*job_args, workdir=...)`` -> a running :class:`LocalJob`; every job is stopped at the end."""
    from qaflow.flinkjob.runner import LocalJob

    started: list[LocalJob] = []

    def start(*args: str, workdir: Path | None = None) -> LocalJob:
        job = LocalJob(
            [
                "--bootstrap-servers", kafka_bootstrap,
                "--topic-prefix", topic_prefix,
                "--group-id", f"score-job-{unique_name}",
                "--batch-wait-ms", "200",
                *args,
            ],
            workdir=workdir or tmp_path / "job",
            jars=connector_jars,
            env=job_env(),
            rest_port=free_port(),
        )
        started.append(job)
        job.start()
        try:
            job.wait_running(timeout=240)
        except Exception:
            _dump_logs(job)
            raise
        return job

    yield start
    for job in started:
        job.stop()


def _dump_logs(job: Any) -> None:
    for path in [job.client_log, *sorted(job.log_dir.glob("*.log"))]:
        if path.is_file():
            text = path.read_text(errors="replace")
            print(f"--- {path} (last 4000 chars)\n{text[-4000:]}")
