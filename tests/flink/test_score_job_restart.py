"""The score job killed and restarted from its last retained checkpoint keeps its keyed state.

The lexical scorer keeps this test quick and its scores exact; the state and checkpoint
path are the same for every scorer.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from qaflow.flinkjob.runner import latest_checkpoint
from tests.flink.conftest import answer, produce

pytestmark = [pytest.mark.flink, pytest.mark.timeout(900)]

REF_A = "The mitochondria is the powerhouse of the cell and makes most of its energy."
REF_B = "Water boils at one hundred degrees Celsius at sea level."
REF_C = "The Pacific is the largest and deepest ocean on Earth."


def _wait_checkpoint_after(job, job_id: str, timeout: float = 60) -> None:
    """Until a checkpoint that started after now has completed: it covers what was processed."""
    seen = job.completed_checkpoints(job_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if job.completed_checkpoints(job_id) >= seen + 2:
            return
        time.sleep(0.5)
    pytest.fail(f"no checkpoint completed in {timeout}s")


def test_restart_from_checkpoint_keeps_state(start_job, kafka_bootstrap, topic_prefix, outputs, tmp_path) -> None:
    answers = topic_prefix + "qa.answers"
    workdir = tmp_path / "job"
    args = ("--scorer", "lexical", "--threshold", "0.8", "--max-generations", "3", "--checkpoint-interval-s", "1")
    a1 = answer("How do cells get energy?", REF_A, "The mitochondria makes energy.")  # partial overlap
    b1 = answer("When does water boil?", REF_B, REF_B)  # exact: validated
    job = start_job(*args, workdir=workdir)
    produce(kafka_bootstrap, answers, [a1, b1])
    outputs.wait_for({"qa.scores": 2, "qa.results": 1, "qa.questions": 1}, timeout=180, alive=lambda: job.running)
    job_id = job.running_job_id()
    assert job_id
    _wait_checkpoint_after(job, job_id)
    job.kill()  # a crash: no savepoint, no clean shutdown

    checkpoint = latest_checkpoint(workdir / "checkpoints")
    assert checkpoint is not None and checkpoint.parent.name == job_id

    # While the job is down: re-deliveries of routed answers, the next generation of A
    # without the best attempt in the message (only the restored state knows it), a new question.
    a2 = answer("How do cells get energy?", REF_A, "Cells eat sugar.", generation=2)
    c1 = answer("Which ocean is the largest?", REF_C, REF_C)
    produce(kafka_bootstrap, answers, [b1, a1, a2, c1])

    restarted = start_job(*args, "--restore-from", checkpoint.as_uri(), workdir=workdir)
    outputs.wait_for({"qa.scores": 4, "qa.results": 2, "qa.questions": 2}, timeout=180,
                     alive=lambda: restarted.running)
    outputs.settle(5)

    scores = outputs.values("qa.scores")
    results = outputs.values("qa.results")
    questions = outputs.values("qa.questions")
    # Nothing scored twice, nothing lost.
    assert Counter((s["question_id"], s["generation"]) for s in scores) == Counter(
        {(a1.question_id, 1): 1, (b1.question_id, 1): 1, (a1.question_id, 2): 1, (c1.question_id, 1): 1}
    )
    # No question reaches a terminal state twice.
    assert sorted(r["question_id"] for r in results) == sorted([b1.question_id, c1.question_id])
    assert all(r["status"] == "validated" for r in results)
    # Generations continue across the restart, and the best attempt comes from the restored state.
    regen = sorted(questions, key=lambda q: q["generation"])
    assert [(q["question_id"], q["generation"]) for q in regen] == [(a1.question_id, 2), (a1.question_id, 3)]
    assert regen[1]["best"]["generation"] == 1 and regen[1]["best"]["answer"] == a1.answer
    assert outputs.records["qa.dead-letter"] == []
