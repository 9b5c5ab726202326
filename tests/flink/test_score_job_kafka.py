"""The score job on a MiniCluster, with the real Kafka connector, real Kafka and real BERTScore (MiniLM).

One job run serves every assertion: starting a MiniCluster and loading the model is the
expensive part.
"""

from __future__ import annotations

import json

import pytest
from kafka.partitioner.default import murmur2

from qaflow.core.messages import BestAttempt
from tests.flink.conftest import PARTITIONS, answer, produce

pytestmark = [pytest.mark.flink, pytest.mark.bertscore, pytest.mark.timeout(900)]

PARIS_REF = "Paris is the capital of France. It is also the largest city in the country."
MADRID_REF = "The capital of Spain is Madrid, which is also the largest city in Spain."
ROME_REF = "Rome is the capital city of Italy and was the centre of the Roman Empire."


def test_scores_routes_and_dead_letters(start_job, kafka_bootstrap, topic_prefix, outputs) -> None:
    near_copy = answer("Capital of France?", PARIS_REF,
                       "Paris is the capital of France, and it is also the largest city in the country.")
    poor_first = answer("Capital of Spain?", MADRID_REF, "I enjoy long walks on the beach with my dog.")
    earlier_best = BestAttempt(answer="Rome is the capital of Italy.", score=0.78, generation=1, model="m0")
    poor_last = answer("Capital of Italy?", ROME_REF, "Bananas are yellow.", generation=3, best=earlier_best)
    bad_answer = answer("Capital of Peru?", "Lima is the capital of Peru.", "Lima.")
    bad_answer_raw = bad_answer.model_dump(mode="json")
    del bad_answer_raw["model"]  # schema-invalid answer, valid question: the question must end failed
    blank_ref = answer("Capital of Chile?", "   ", "Santiago.")

    job = start_job("--scorer", "bertscore", "--threshold", "0.85", "--max-generations", "3")
    produce(kafka_bootstrap, topic_prefix + "qa.answers", [
        near_copy, poor_first, poor_last,
        b"this is not json", b'{"v": 1, "question": {"question_id": "abc"}}',
        json.dumps(bad_answer_raw).encode(), blank_ref,
    ])
    outputs.wait_for({"qa.scores": 3, "qa.results": 2, "qa.questions": 1, "qa.dead-letter": 4},
                     timeout=300, alive=lambda: job.running)
    outputs.settle(3)

    scores = {s["question_id"]: s for s in outputs.values("qa.scores")}
    results = {r["question_id"]: r for r in outputs.values("qa.results")}
    questions = outputs.values("qa.questions")
    dead = outputs.values("qa.dead-letter")
    assert len(scores) == 3 and len(results) == 2 and len(questions) == 1 and len(dead) == 4

    # A near copy of the reference is validated at once, with a real BERTScore.
    ok = results[near_copy.question_id]
    assert ok["status"] == "validated" and ok["best_generation"] == 1 and ok["generations"] == 1
    assert ok["score"] >= 0.85 and ok["answer"] == near_copy.answer
    assert scores[near_copy.question_id]["decision"] == "validated"
    assert scores[near_copy.question_id]["scorer"]["name"] == "bertscore"
    assert scores[near_copy.question_id]["scorer"]["model"] == "sentence-transformers/all-MiniLM-L6-v2"

    # A poor first answer goes back to the LLM as generation 2, carrying its best attempt.
    again = questions[0]
    assert again["question_id"] == poor_first.question_id
    assert again["generation"] == 2 and again["delivery"] == 1
    assert again["best"]["generation"] == 1 and again["best"]["answer"] == poor_first.answer
    assert scores[poor_first.question_id]["decision"] == "regenerate"
    assert scores[poor_first.question_id]["score"] < 0.85
    assert poor_first.question_id not in results

    # A poor answer at the last generation: exhausted, and the result holds the better, earlier attempt.
    last = results[poor_last.question_id]
    assert last["status"] == "exhausted" and last["generations"] == 3
    assert last["answer"] == earlier_best.answer and last["score"] == earlier_best.score
    assert last["best_generation"] == 1
    assert scores[poor_last.question_id]["decision"] == "exhausted"
    assert scores[poor_last.question_id]["score"] < earlier_best.score

    # Poison records: dead letters with a reason and their origin; the job keeps running.
    by_key = {d["question_id"]: d for d in dead}
    assert all(d["origin"]["topic"] == topic_prefix + "qa.answers" for d in dead)
    assert all("partition/offset unknown" in d["reason"] for d in dead)
    assert "not valid UTF-8 JSON" in by_key[None]["reason"] and by_key[None]["payload"] == "this is not json"
    assert "question_id" in by_key["abc"]["reason"] and by_key["abc"]["question"] is None
    failed = by_key[bad_answer.question_id]
    assert "model" in failed["reason"] and failed["question"]["question_id"] == bad_answer.question_id
    assert "blank" in by_key[blank_ref.question_id]["reason"]
    assert job.running
    job_id = job.running_job_id()
    assert job_id and not job.rest(f"/jobs/{job_id}/exceptions")["exceptionHistory"]["entries"]

    # Keys: every record keyed by its question id (null for a poison record without one), on
    # the partition Kafka's default partitioner picks, as for every other producer.
    for topic, records in outputs.records.items():
        for rec in records:
            qid = json.loads(rec.value)["question_id"]
            assert rec.key == (qid.encode() if qid else None), topic
            if rec.key is not None:
                assert rec.partition == (murmur2(rec.key) & 0x7FFFFFFF) % PARTITIONS, (topic, qid)
