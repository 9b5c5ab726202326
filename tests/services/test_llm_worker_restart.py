"""An llm-worker killed after dead-lettering questions but before committing their offsets, on
real Kafka with the service as a process and an LLM that refuses every call (400): its successor
gets the questions again and must not dead-letter any of them a second time (the questions it
ended are read back from qa.dead-letter, qaflow.core.restore, qaflow.services.ended).

Before the read-back, each re-delivered question was called again, refused again and
dead-lettered again: two terminal records for one question (the chaos suite's LLM never fails
for good, so nothing saw it)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qaflow.core import topics
from qaflow.core.messages import DeadLetter, QuestionMessage, decode_for_topic
from tests.services.test_workers_poison import stub_server, wait_for
from tests.services.test_workers_processes import REFERENCE, Harness, committed, metric

pytestmark = pytest.mark.integration

REFUSED = 5  # questions after the held one, refused and dead-lettered while it waits


@pytest.fixture
def harness(kafka_bootstrap: str, unique_name: str, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(kafka_bootstrap, f"{unique_name}.", tmp_path / "logs")
    yield h
    h.close()


def test_an_llm_worker_killed_before_its_commit_dead_letters_no_question_twice(
    harness: Harness, kafka_bootstrap: str, unique_name: str
) -> None:
    held = threading.Event()  # the first question's call is waiting: no offset can be committed
    release = threading.Event()
    calls: list[str] = []

    def reply(path: str, body: Any) -> tuple[int, Any]:
        prompt = json.dumps(body)
        calls.append(prompt)
        if "Hold me" in prompt and not held.is_set():
            held.set()
            release.wait(60)
        return 400, {"error": {"message": "this model does not answer that", "type": "invalid_request_error"}}

    server, url = stub_server(reply)
    env = {"QAFLOW_LLM_PROVIDER": "openai", "QAFLOW_LLM_BASE_URL": url, "QAFLOW_LLM_CONCURRENCY": "8",
           "QAFLOW_LLM_TIMEOUT_S": "120"}
    first_q = QuestionMessage.new("Hold me?", "", REFERENCE)
    questions = [first_q, *(QuestionMessage.new(f"Refuse {i}?", "", REFERENCE) for i in range(REFUSED))]
    ids = {q.question_id for q in questions}
    try:
        for q in questions:  # one key: one partition, the held question at its lowest offset
            harness.send(topics.QUESTIONS, first_q.question_id, q.encode())
        first = harness.start("llm-worker", **env)
        wait_for("the first question's call held", held.is_set, [first])
        out = harness.collect([topics.DEAD_LETTER], lambda got: len(got) >= REFUSED, 30)
        assert {r.key for r in out} == ids - {first_q.question_id}, "the refused questions are dead-lettered"
        assert all(isinstance(dl := decode_for_topic(r.topic, r.value), DeadLetter) and dl.question is not None
                   and dl.stage == "llm" for r in out), "each dead letter carries its question: it ends it failed"
        offsets = committed(kafka_bootstrap, f"{unique_name}.qaflow-llm-worker")
        assert sum(offsets.values()) == 0, f"nothing committed yet: {offsets}"
        assert first.pid is not None
        os.kill(first.pid, signal.SIGKILL)
        wait_for("the process gone", lambda: not first.running(), [])
        release.set()
        calls_before = len(calls)

        second = harness.start("llm-worker", **env)
        second.wait_ready(60)
        seen = harness.collect([topics.DEAD_LETTER], lambda got: {r.key for r in got} >= ids, 60)
        assert {r.key for r in seen} == ids
        # Dropped (the fix), or called again (each call then dead-letters its question again).
        wait_for("the re-delivered questions handled", timeout_s=30, procs=[second], check=lambda: (
            metric(second.url, "qaflow_ended_dropped_total") >= REFUSED or len(calls) - calls_before > REFUSED))
        time.sleep(1.0)  # anything dead-lettered twice would be on the topic by now
        ends = Counter(r.key for r in harness.collect([topics.DEAD_LETTER], lambda got: False, 3))
        assert sorted(ends.values()) == [1] * len(ids), f"questions dead-lettered more than once: {ends}"
        assert len(calls) - calls_before == 1, "only the question never ended was called again"
        assert metric(second.url, "qaflow_ended_restored_total") >= REFUSED
    finally:
        release.set()
        server.shutdown()
        server.server_close()
