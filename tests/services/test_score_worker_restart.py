"""A score-worker killed after publishing results but before committing their offsets, on real
Kafka with the service as a process: its successor gets the answers again and must not end any
question a second time (the duplicate check is rebuilt from qa.results, qaflow.core.score_restore).

Before the rebuild, each re-delivered answer was routed again and a second terminal record went
to qa.results (the chaos suite's sigkill-score-worker row counted them as duplicated)."""

from __future__ import annotations

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
from qaflow.core.messages import AnswerMessage, QuestionMessage
from tests.services.test_workers_poison import stub_server, wait_for
from tests.services.test_workers_processes import REFERENCE, Harness, committed, metric

pytestmark = pytest.mark.integration

BATCH = 4


@pytest.fixture
def harness(kafka_bootstrap: str, unique_name: str, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(kafka_bootstrap, f"{unique_name}.", tmp_path / "logs")
    yield h
    h.close()


def test_a_score_worker_killed_before_its_commit_ends_no_question_twice(
    harness: Harness, kafka_bootstrap: str, unique_name: str
) -> None:
    held = threading.Event()  # the second batch's scoring call is waiting
    release = threading.Event()
    calls: list[int] = []

    def reply(path: str, body: Any) -> tuple[int, Any]:
        scorer = {"name": "stub", "version": "1"}
        if path == "/v1/info":
            return 200, {"scorer": scorer}
        calls.append(len(body["pairs"]))
        if len(calls) == 2:  # hold the second batch: the first one's results are out, uncommitted
            held.set()
            release.wait(60)
        return 200, {"scores": [0.95] * len(body["pairs"]), "scorer": scorer}

    server, url = stub_server(reply)
    env = {"QAFLOW_SCORER": "remote", "QAFLOW_SCORER_URL": url, "QAFLOW_THRESHOLD": "0.8",
           "QAFLOW_SCORER_TIMEOUT_S": "30", "QAFLOW_SCORER_BATCH_SIZE": str(BATCH),
           "QAFLOW_COMMIT_INTERVAL_MS": "60000"}
    answers = [AnswerMessage(question=QuestionMessage.new(f"Restart {i}?", "", REFERENCE), answer=f"Answer {i}.",
                             model="m", provider="p", latency_ms=1) for i in range(2 * BATCH)]
    ids = {a.question_id for a in answers}
    try:
        for a in answers:
            harness.send(topics.ANSWERS, a.question_id, a.encode())
        first = harness.start("score-worker", **env)
        wait_for("the second batch held", held.is_set, [first])
        first_batch = calls[0]  # up to BATCH: a client may hand over one partition's records first
        out = harness.collect([topics.RESULTS], lambda got: len(got) >= first_batch, 30)
        assert len(out) == first_batch, "the first batch's results are on qa.results"
        assert committed(kafka_bootstrap, f"{unique_name}.qaflow-score") == {}, "nothing committed yet"
        assert first.pid is not None
        os.kill(first.pid, signal.SIGKILL)
        wait_for("the process gone", lambda: not first.running(), [])
        release.set()

        second = harness.start("score-worker", **env)
        seen = harness.collect([topics.RESULTS], lambda got: {r.key for r in got} >= ids, 60)
        assert {r.key for r in seen} == ids
        wait_for("the re-delivered answers dropped", timeout_s=30, check=
                 lambda: metric(second.url, "qaflow_score_duplicates_total") >= first_batch, procs=[second])
        time.sleep(1.0)  # anything routed twice would be on the topic by now
        ends = Counter(r.key for r in harness.collect([topics.RESULTS], lambda got: False, 3))
        assert sorted(ends.values()) == [1] * len(ids), f"questions ended more than once: {ends}"
        assert metric(second.url, "qaflow_score_restored_total", **{"as": "ended"}) >= first_batch
    finally:
        release.set()
        server.shutdown()
        server.server_close()
