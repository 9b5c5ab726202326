"""A retry-worker killed after releasing retries at the delivery cap as dead letters but before
committing their offsets (a retry held for an hour at the lowest offset keeps them uncommitted),
on real Kafka with the service as a process: its successor reads them again and must not
dead-letter any question a second time (qaflow.core.restore, qaflow.services.ended)."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from qaflow.core import topics
from qaflow.core.errors import ErrorClass
from qaflow.core.messages import QuestionMessage, RetryMessage
from tests.services.test_workers_poison import wait_for
from tests.services.test_workers_processes import REFERENCE, Harness, committed, metric

pytestmark = pytest.mark.integration

CAPPED = 4  # retries at the delivery cap, released as dead letters


@pytest.fixture
def harness(kafka_bootstrap: str, unique_name: str, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(kafka_bootstrap, f"{unique_name}.", tmp_path / "logs")
    yield h
    h.close()


def test_a_retry_worker_killed_before_its_commit_dead_letters_no_question_twice(
    harness: Harness, kafka_bootstrap: str, unique_name: str
) -> None:
    env = {"QAFLOW_MAX_DELIVERY_ATTEMPTS": "3"}
    held = RetryMessage(question=QuestionMessage.new("Held?", "", REFERENCE), error_class=ErrorClass.QUOTA,
                        error="429", not_before=time.time() + 3600)
    capped = [RetryMessage(question=QuestionMessage.new(f"Capped {i}?", "", REFERENCE).model_copy(
        update={"delivery": 3}), error_class=ErrorClass.QUOTA, error="429", not_before=0) for i in range(CAPPED)]
    ids = {m.question.question_id for m in capped}
    for m in (held, *capped):  # one key: one partition, the held retry at its lowest offset
        harness.send(topics.RETRY_QUOTA, held.question.question_id, m.encode())
    first = harness.start("retry-worker", **env)
    first.wait_ready(60)
    out = harness.collect([topics.DEAD_LETTER], lambda got: len(got) >= CAPPED, 60)
    assert {r.key for r in out} == ids
    wait_for("the releases counted", lambda: metric(first.url, "qaflow_retry_released_total") >= CAPPED, [first])
    offsets = committed(kafka_bootstrap, f"{unique_name}.qaflow-retry-worker")
    assert sum(offsets.values()) == 0, f"nothing committed past the held retry: {offsets}"
    assert first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    wait_for("the process gone", lambda: not first.running(), [])

    second = harness.start("retry-worker", **env)
    second.wait_ready(60)
    # Dropped (the fix), or released again (each then dead-letters its question again).
    wait_for("the re-delivered retries handled", timeout_s=60, procs=[second], check=lambda: (
        metric(second.url, "qaflow_ended_dropped_total") >= CAPPED
        or metric(second.url, "qaflow_retry_released_total") >= CAPPED))
    time.sleep(1.0)  # anything dead-lettered twice would be on the topic by now
    ends = Counter(r.key for r in harness.collect([topics.DEAD_LETTER], lambda got: False, 3))
    assert sorted(ends.values()) == [1] * len(ids), f"questions dead-lettered more than once: {ends}"
    assert metric(second.url, "qaflow_ended_restored_total") >= CAPPED
    assert metric(second.url, "qaflow_retry_waiting") == 1  # the held retry waits again, untouched
