"""Poison answers for the score job on a MiniCluster, real Kafka, and the remote scorer.

The job scores pairs in batches (one Arrow batch -> one ``POST /v1/score``). A stub scorer
service refuses any batch that holds a candidate with ``POISON`` (HTTP 422, a permanent
:class:`ScoringError`), and answers an out-of-range integer score for a candidate with
``OVERFLOW``, which the client refuses with a permanent ``ScoringError`` (not a finite
score). Either error takes the whole batch down; the job must then score the
batch pair by pair, dead-letter only the two poison questions, and keep running. This is
the issue 9 item 1 poison test for the last stage that had none (the others are in
tests/services/test_workers_poison.py).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.flink.conftest import answer, produce
from tests.services.test_workers_poison import stub_server

pytestmark = [pytest.mark.flink, pytest.mark.timeout(400)]

REFERENCE = "Bread goes stale because its starch recrystallises and the crumb loses water."
SCORER = {"name": "stub", "version": "1"}
TOO_BIG = 10**400  # valid JSON, but no float: ``math.isfinite`` raises OverflowError on it


def test_poison_answers_are_dead_lettered_and_their_batch_neighbours_scored(
    start_job, kafka_bootstrap, topic_prefix, outputs
) -> None:
    requests: list[list[str]] = []  # the candidates of each POST /v1/score, in arrival order
    status_of: list[int] = []
    lock = threading.Lock()

    def reply(path: str, body: Any) -> tuple[int, Any]:
        if path == "/v1/info":
            return 200, {"scorer": SCORER}
        candidates = [p["candidate"] for p in body["pairs"]]
        if any("POISON" in c for c in candidates):
            got: tuple[int, Any] = 422, {"error": "candidate contains a token the model cannot embed"}
        else:
            got = 200, {"scores": [TOO_BIG if "OVERFLOW" in c else 0.95 for c in candidates], "scorer": SCORER}
        with lock:
            requests.append(candidates)
            status_of.append(got[0])
        return got

    server, url = stub_server(reply)
    try:
        poison = answer("Why does bread go stale (poison)?", REFERENCE, "Starch. POISON token here.")
        overflow = answer("Why does bread go stale (overflow)?", REFERENCE, "Starch. OVERFLOW reply here.")
        good = [answer(f"Why does bread go stale, take {i}?", REFERENCE, f"Its starch recrystallises ({i}).")
                for i in range(8)]
        # Poison first, in the middle and last, so good answers sit before and behind them.
        records = [poison, *good[:4], overflow, *good[4:]]

        job = start_job("--scorer", "remote", "--scorer-url", url, "--threshold", "0.8",
                        "--max-generations", "3", "--batch-wait-ms", "1000")
        produce(kafka_bootstrap, topic_prefix + "qa.answers", records)
        outputs.wait_for({"qa.results": len(good), "qa.dead-letter": 2}, timeout=150, alive=lambda: job.running)
        outputs.settle(3)

        results = {r["question_id"]: r for r in outputs.values("qa.results")}
        scores = {s["question_id"]: s for s in outputs.values("qa.scores")}
        dead = {d["question_id"]: d for d in outputs.values("qa.dead-letter")}

        # Every good answer is scored and validated, whatever batch it shared with a poison one.
        assert set(results) == {a.question_id for a in good}
        assert all(r["status"] == "validated" and r["score"] == pytest.approx(0.95) for r in results.values())
        assert set(scores) == {a.question_id for a in good}
        assert outputs.values("qa.questions") == []

        # Each poison answer: one dead letter carrying its question (so it ends failed) and the reason.
        assert set(dead) == {poison.question_id, overflow.question_id}
        for d in dead.values():
            assert d["stage"] == "score-job" and d["error_class"] == "permanent"
            assert d["origin"]["topic"] == topic_prefix + "qa.answers"
        assert dead[poison.question_id]["question"]["question_id"] == poison.question_id
        assert "HTTP 422" in dead[poison.question_id]["reason"]
        assert "cannot embed" in dead[poison.question_id]["reason"]
        assert dead[overflow.question_id]["question"]["question_id"] == overflow.question_id
        assert "ScoringError" in dead[overflow.question_id]["reason"]
        assert "finite scores" in dead[overflow.question_id]["reason"]

        # The isolation was exercised: a batch failed with good answers in it, and those
        # answers were then scored alone.
        with lock:
            seen = list(zip(requests, status_of, strict=True))
        failed_batches = [c for c, s in seen if s == 422 or any("OVERFLOW" in x for x in c)]
        assert any(len(c) > 1 for c in failed_batches), seen
        scored_ok = [c for c, s in seen if s == 200 and not any("OVERFLOW" in x for x in c)]
        assert all(any(a.answer in c for c in scored_ok) for a in good), seen

        # The job kept running: not failed, not restarted.
        assert job.running
        job_id = job.running_job_id()
        assert job_id and not job.rest(f"/jobs/{job_id}/exceptions")["exceptionHistory"]["entries"]
    finally:
        server.shutdown()
        server.server_close()
