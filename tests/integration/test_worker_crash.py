"""Acceptance: a consumer SIGKILLed in the middle of a batch loses nothing; poison records
become dead letters with their origin and do not stop the records behind them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qaflow.bus.base import Record
from qaflow.bus.memory import MemoryBus
from qaflow.bus.prefixed import PrefixedBus
from qaflow.core import topics
from qaflow.core.messages import DeadLetter, QuestionMessage
from qaflow.core.settings import BackendSettings
from qaflow.core.topics import TopicSpec
from qaflow.pipeline.outputs import Output
from qaflow.pipeline.worker import Worker

SCRIPT = Path(__file__).with_name("crash_consumer.py")
FAST_GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 500, "max_poll_interval_ms": 20_000}
COPY = "crash.copy"
N = 300


def kafka_bus(bootstrap: str, prefix: str) -> PrefixedBus:
    from qaflow.bus.kafka import KafkaBus

    url = f"kafka://{bootstrap}"
    return PrefixedBus(KafkaBus(url, BackendSettings(bus_url=url), consumer_options=FAST_GROUP), prefix)


def questions(n: int, tag: str) -> list[QuestionMessage]:
    return [QuestionMessage.new(f"{tag} question {i}", "", "a reference answer") for i in range(n)]


def read_all(bus: Any, topic: str, group: str, until: Callable[[list[Record]], bool], timeout_s: float) -> list[Record]:
    consumer = bus.consumer(group, [topic])
    consumer.start()
    got: list[Record] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not until(got) and time.monotonic() < deadline:
            got.extend(consumer.poll(0.5, 500))
    finally:
        consumer.close()
    return got


class Runner:
    """Starts crash_consumer.py processes; kills whatever is left at teardown."""

    def __init__(self, tmp: Path, bootstrap: str, prefix: str, group: str) -> None:
        self.progress = tmp / "progress.txt"
        self.progress.touch()
        self.logs = tmp
        self.args = [
            sys.executable, str(SCRIPT), "--bootstrap", bootstrap, "--prefix", prefix, "--group", group,
            "--output", COPY, "--progress", str(self.progress), "--delay-ms", "8", "--batch", "10",
        ]  # fmt: skip
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        with open(self.logs / f"run{len(self.procs)}.log", "wb") as log:
            proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def handled(self) -> int:
        return len(self.progress.read_text().splitlines())

    def wait_handled(self, at_least: int, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            n = self.handled()
            if n >= at_least:
                return n
            assert proc.poll() is None, f"consumer exited early: {self.log_tail()}"
            time.sleep(0.01)
        pytest.fail(f"only {self.handled()} records handled after {timeout_s}s: {self.log_tail()}")

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def log_tail(self) -> str:
        logs = sorted(self.logs.glob("run*.log"))
        return logs[-1].read_text()[-3000:] if logs else ""

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


@pytest.mark.integration
def test_sigkill_mid_batch_loses_nothing(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = f"{unique_name}."
    bus = kafka_bus(kafka_bootstrap, prefix)
    bus.start()
    bus.ensure_topics([TopicSpec(topics.QUESTIONS, 3, 3_600_000), TopicSpec(COPY, 3, 3_600_000)])
    sent = questions(N, unique_name)
    producer = bus.producer()
    producer.start()
    for q in sent:
        producer.send(topics.QUESTIONS, q.question_id, q.encode())
    producer.flush(30)
    producer.close()

    runner = Runner(tmp_path, kafka_bootstrap, prefix, f"{unique_name}_copy")
    try:
        # Two crashes, each in the middle of the stream (and, almost surely, of a batch).
        for at_least in (N // 4, (N * 3) // 5):
            proc = runner.start()
            runner.wait_handled(at_least, proc)
            runner.kill(proc)
            assert proc.returncode == -signal.SIGKILL
            assert runner.handled() < N + at_least, "killed too late to test anything"
        killed_at = runner.handled()
        runner.start()
        wanted = {q.question_id for q in sent}
        copied = read_all(bus, COPY, f"{unique_name}_check", lambda got: wanted <= {r.key for r in got}, timeout_s=90)
    finally:
        runner.close()

    counts = Counter(r.key for r in copied)
    missing = wanted - set(counts)
    assert not missing, f"{len(missing)} of {N} records lost after SIGKILL: {sorted(missing)[:5]}"
    assert set(counts) == wanted
    for record in copied:  # copies are byte-for-byte
        assert QuestionMessage.model_validate_json(record.value).question_id == record.key
    duplicates = sum(counts.values()) - N
    with capsys.disabled():
        print(
            f"\n[crash test] {N} records, 2 SIGKILLs (handled {killed_at} lines before the last restart, "
            f"{runner.handled()} in all): 0 lost, {duplicates} duplicate output record(s), "
            f"{runner.handled() - N} re-handled"
        )


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.integration)])
def poison_bus(request: pytest.FixtureRequest, unique_name: str) -> Iterator[Any]:
    prefix = f"{unique_name}."
    if request.param == "memory":
        bus: Any = PrefixedBus(MemoryBus(f"memory://{unique_name}"), prefix)
    else:
        bus = kafka_bus(request.getfixturevalue("kafka_bootstrap"), prefix)
    bus.start()
    try:
        yield bus
    finally:
        bus.close()
        MemoryBus.reset(unique_name)


def test_poison_records_become_dead_letters_and_the_rest_flows(poison_bus: Any, unique_name: str) -> None:
    bus = poison_bus
    bus.ensure_topics([TopicSpec(t, 2, 3_600_000) for t in (topics.QUESTIONS, topics.DEAD_LETTER, COPY)])
    good = questions(3, unique_name)
    key = good[0].question_id  # one key: one partition, offsets 0..4 in this order
    schema_invalid = json.dumps({"v": 1, "question_id": key, "title": "", "reference_answer": "r"}).encode()
    values = [good[0].encode(), b"this is {not json", schema_invalid, good[1].encode(), good[2].encode()]
    producer = bus.producer()
    producer.start()
    for value in values:
        producer.send(topics.QUESTIONS, key, value)
    producer.flush(30)

    worker = Worker(
        "copy",
        bus.consumer(f"{unique_name}_copy", [topics.QUESTIONS]),
        bus.producer(),
        lambda batch: [Output(COPY, rec.key, rec.value) for rec, _ in batch],
        max_records=2,  # the poison records arrive in the middle of a batch and alone in one
    )
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while worker.processed < len(values) and time.monotonic() < deadline:
            worker.step(0.5)
        assert worker.processed == len(values)
    finally:
        worker.close()
        producer.close()

    copied = read_all(bus, COPY, f"{unique_name}_c", lambda got: len(got) >= 3, 30)
    dead = read_all(bus, topics.DEAD_LETTER, f"{unique_name}_d", lambda got: len(got) >= 2, 30)
    assert [r.value for r in copied] == [good[0].encode(), good[1].encode(), good[2].encode()]
    letters = sorted((DeadLetter.model_validate_json(r.value) for r in dead), key=lambda d: d.origin.offset or 0)
    partition = copied[0].partition
    assert [(d.origin.topic, d.origin.partition, d.origin.offset) for d in letters] == [
        (topics.QUESTIONS, partition, 1),
        (topics.QUESTIONS, partition, 2),
    ]
    assert "JSON" in letters[0].reason
    assert "title" in letters[1].reason
    assert all(d.reason.startswith("invalid record") and d.stage == "copy" for d in letters)
    assert letters[0].payload == "this is {not json"
    assert all(d.question_id == key for d in letters)

    # Everything was committed: the group has nothing left to deliver.
    again = read_all(bus, topics.QUESTIONS, f"{unique_name}_copy", lambda got: False, 2.0)
    assert again == []
