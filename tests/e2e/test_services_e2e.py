"""The whole loop with every service as its own process: api under gunicorn, llm-worker,
retry-worker, score-worker (lexical scorer) and storage-writer, on real Kafka, PostgreSQL
and Redis, with a fake LLM answering 10% 429s and 5% 503s. traffic-gen (a process too)
sends the shipped sample with 30% repeats, and the llm-worker is SIGKILLed halfway.

Checks: every question the api accepted ends in exactly one terminal state; nothing is lost or
duplicated across the crash; repeats of answered questions come from the cache; the api
agrees with PostgreSQL.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
import requests

from qaflow.core import topics
from qaflow.datasets import open_dataset
from qaflow.devstack.ports import free_port
from tests.pg import pg_rows, terminal_count

from .conftest import ServiceStack
from .loop import start_flaky_llm

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(600)]

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample.csv"
DONE_WITHIN_S = 300


def read_topic(bootstrap: str, topic: str) -> list[tuple[str | None, dict[str, Any]]]:
    """Every record of ``topic``, from the start to its current end."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out: list[tuple[str | None, dict[str, Any]]] = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < end[tp] for tp in tps) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                out.extend((r.key.decode() if r.key else None, json.loads(r.value)) for r in records)
        return out
    finally:
        consumer.close()


def diagnose(api_url: str, pg_url: str, missing: set[str]) -> str:
    """Where the questions that never ended got stuck."""
    lines = [f"{len(missing)} question(s) not terminal:"]
    for qid in sorted(missing)[:10]:
        known = pg_rows(pg_url, "SELECT enqueued_at FROM questions WHERE question_id = %s", (qid,))
        try:
            status = requests.get(f"{api_url}/v1/questions/{qid}", timeout=5).json().get("status")
        except requests.RequestException as exc:
            status = repr(exc)
        lines.append(f"  {qid}: recorded by the api: {bool(known)}; api status: {status}")
    return "\n".join(lines)


def start_score_job(stack: ServiceStack, request: pytest.FixtureRequest) -> Any:
    """The PyFlink job on a MiniCluster in place of the score-worker, configured as the chart does:
    by QAFLOW_* variables (the score-worker's set), with the connector jar from the cache."""
    from qaflow.devstack.catalog import SERVICES, environment
    from qaflow.flinkjob.runner import LocalJob

    env = environment(SERVICES["score-worker"], stack.backends, config={
        **stack.config, "QAFLOW_FLINK_GROUP_ID": f"{stack.backends.topic_prefix}score-job",
        "QAFLOW_FLINK_CHECKPOINT_INTERVAL_S": "5",
    })
    job = LocalJob(job_args=[], workdir=stack.root / "flink", env=env, rest_port=free_port()).start()
    request.addfinalizer(job.stop)
    job.wait_running(240)
    return job


@pytest.mark.parametrize("score_stage", ["score-worker", pytest.param("flink", marks=pytest.mark.flink)])
def test_every_question_ends_once_across_an_llm_worker_crash(
    stack: ServiceStack,
    kafka_bootstrap: str,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    score_stage: str,
) -> None:
    """Run with the score-worker, and with the PyFlink job in its place."""
    pg_url, prefix = stack.backends.store_url, stack.backends.topic_prefix
    expected_ids = {q.id for q in open_dataset(SAMPLE)}
    fake = start_flaky_llm(stack, QAFLOW_SHUTDOWN_GRACE_S="10", QAFLOW_AIMD_RECOVER_AFTER_S="1",
                           QAFLOW_MAX_DELIVERY_ATTEMPTS="8", QAFLOW_SCORER_BATCH_SIZE="32")
    names = ["storage-writer", "api", "llm-worker", "retry-worker"]
    services = [stack.start(name) for name in names + (["score-worker"] if score_stage == "score-worker" else [])]
    for proc in services:
        proc.wait_ready(90)
    if score_stage == "flink":
        start_score_job(stack, request)
    api = stack.procs["api"]
    stack.mark("services ready")

    ids_file = stack.root / "accepted-ids.txt"
    traffic = stack.start(
        "traffic-gen", "--json", "--ids-file", str(ids_file),
        QAFLOW_TRAFFIC_API_URL=api.url, QAFLOW_TRAFFIC_DATASET=str(SAMPLE), QAFLOW_TRAFFIC_RATE="25",
        QAFLOW_TRAFFIC_REPEAT_SHARE="0.3", QAFLOW_TRAFFIC_WAIT_S=str(DONE_WITHIN_S), QAFLOW_TRAFFIC_SEED="5",
        QAFLOW_RUN_ID=f"e2e-{prefix.rstrip('.')}",
    )

    # SIGKILL the llm-worker once about half the questions are terminal, then start it again.
    deadline = time.monotonic() + DONE_WITHIN_S
    while terminal_count(pg_url) < len(expected_ids) // 2:
        assert time.monotonic() < deadline, f"only {terminal_count(pg_url)} terminal\n{stack.dump_logs()}"
        assert traffic.running() or traffic.proc is None or traffic.proc.returncode == 0, traffic.tail()
        time.sleep(0.3)
    stack.mark("half terminal")
    at_kill = terminal_count(pg_url)
    stack.procs["llm-worker"].kill()
    restarted = stack.start("llm-worker")
    restarted.wait_ready(90)
    stack.mark("llm-worker restarted")

    code, out = traffic.output(timeout_s=DONE_WITHIN_S + 60)  # it polls the api until all are terminal
    stack.mark("all terminal (traffic-gen done)")
    assert code == 0, traffic.tail()
    summary = json.loads(out)
    accepted = set(ids_file.read_text().split())  # answered 200 or 202 at least once

    # Every question the api accepted has exactly one terminal row; nothing else has one.
    assert summary["unique_questions"] == len(expected_ids)
    assert accepted == expected_ids, (summary, len(expected_ids - accepted))  # every question was accepted
    rows = pg_rows(pg_url, "SELECT question_id, status, score, answer, generations FROM results")
    stored = {r[0] for r in rows}
    assert not accepted - stored, diagnose(api.url, pg_url, accepted - stored)
    assert len(rows) == len(stored) and stored <= expected_ids
    assert summary["not_terminal"] == 0
    by_status = Counter(r[1] for r in rows)
    assert sum(summary["terminal"].values()) == len(accepted)
    assert by_status["validated"] > 0 and by_status["exhausted"] > 0

    # Nothing duplicated across the crash: one scored attempt per (question, generation) on
    # qa.scores and in the table, one terminal record per question on the topics.
    scores = read_topic(kafka_bootstrap, prefix + topics.SCORES)
    per_attempt = Counter((v["question_id"], v["generation"]) for _, v in scores)
    assert max(per_attempt.values()) == 1, [k for k, n in per_attempt.items() if n > 1][:5]
    attempts = pg_rows(pg_url, "SELECT question_id, generation FROM attempts")
    assert len(attempts) == len(set(attempts)) == len(per_attempt)
    results = read_topic(kafka_bootstrap, prefix + topics.RESULTS)
    dead = [v for _, v in read_topic(kafka_bootstrap, prefix + topics.DEAD_LETTER) if v.get("question")]
    ends = Counter(k for k, _ in results) + Counter(v["question_id"] for v in dead)
    assert set(ends) == stored and set(ends.values()) == {1}
    assert Counter(v["status"] for _, v in results) == Counter(
        {k: n for k, n in by_status.items() if k != "failed"}
    )
    for qid, generation in attempts:  # generations are contiguous: no attempt lost, none skipped
        assert generation == 1 or (qid, generation - 1) in per_attempt

    # The faults really happened, and went through the retry topics.
    stats = requests.get(fake.url + "/_stats", timeout=5).json()
    assert stats["by_status"].get("429", 0) > 0 and stats["by_status"].get("503", 0) > 0
    retried = read_topic(kafka_bootstrap, prefix + topics.RETRY_QUOTA)
    retried += read_topic(kafka_bootstrap, prefix + topics.RETRY_OVERLOAD)
    assert len(retried) > 0
    # The call ledger counts each (question, generation, delivery) once: a call repeated across the
    # SIGKILL reached the fake LLM twice but is one row (test_call_ledger_e2e.py checks equality without a kill).
    ledger = int(pg_rows(pg_url, "SELECT COUNT(*) FROM llm_calls")[0][0])
    assert 0 < ledger <= stats["total"], (ledger, stats)

    # Repeats of answered questions come back 200 from the cache (failed ones: from the store).
    repeat = stack.start(
        "traffic-gen", "--json",
        QAFLOW_TRAFFIC_API_URL=api.url, QAFLOW_TRAFFIC_DATASET=str(SAMPLE), QAFLOW_TRAFFIC_RATE="50",
        QAFLOW_TRAFFIC_TOTAL="40", QAFLOW_TRAFFIC_REPEAT_SHARE="0",
    )
    code, out = repeat.output(timeout_s=120)
    assert code == 0, repeat.tail()
    again = json.loads(out)
    first = {q.id for q in islice(open_dataset(SAMPLE), 40)}
    assert again["final_codes"].get("200", 0) == len(first & stored) >= 38
    from_cache = again["sources"].get("cache", 0)
    assert from_cache + again["sources"].get("store", 0) == len(first & stored)
    assert from_cache >= len(first & stored) - by_status["failed"]  # failed results are not cached
    # ... and so did the first run's repeats of questions already terminal when repeated.
    assert summary["repeats"] > 30
    assert summary["repeat_sources"].get("cache", 0) > 0
    assert set(summary["repeat_sources"]) <= {"cache", "store", "in-flight", "queued"}

    # The api agrees with PostgreSQL.
    for qid, status, score, answer, generations in random.Random(3).sample(rows, 25):
        body = requests.get(f"{api.url}/v1/questions/{qid}", timeout=10).json()
        assert body["status"] == status
        assert body["result"]["answer"] == answer and body["result"]["generations"] == generations
        assert body["result"]["score"] == (None if score is None else pytest.approx(score))

    stack.mark("checks done")
    answered_after_restart = "answering with" in restarted.log_path.read_text()
    timing = ", ".join(f"{k} at {v} s" for k, v in stack.timings.items())
    with capsys.disabled():
        print(
            f"\ne2e ({score_stage}): {len(accepted)} of {len(expected_ids)} questions accepted, "
            f"{summary['requests']} requests "
            f"({summary['repeats']} repeats) at {summary['achieved_rate']}/s; terminal {dict(by_status)}; "
            f"llm-worker SIGKILLed at {at_kill} "
            f"terminal, restarted: {answered_after_restart}; LLM calls {stats['total']} {stats['by_status']} "
            f"({ledger} in the ledger); "
            f"api errors {summary['errors'] or 'none'}; POST p50/p99 "
            f"{summary['latency_ms']['p50']:.0f}/{summary['latency_ms']['p99']:.0f} ms\ntimeline: {timing}"
        )


@pytest.mark.bertscore
def test_the_loop_with_real_bertscore_in_the_score_worker(
    stack: ServiceStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same services with the score-worker on real BERTScore (MiniLM), on part of the sample."""
    pytest.importorskip("bert_score")
    pg_url = stack.backends.store_url
    fake = stack.start_fake_llm("--latency-ms", "20", "--rate-429", "0.05", "--retry-after-s", "1", "--seed", "3")
    stack.config = {
        "QAFLOW_LOG_FORMAT": "text",
        "QAFLOW_LLM_PROVIDER": "openai",
        "QAFLOW_LLM_BASE_URL": fake.url,
        "QAFLOW_SCORER": "bertscore",
        "QAFLOW_SCORER_DEVICE": "cpu",
        "QAFLOW_SCORER_BATCH_SIZE": "32",
        "QAFLOW_MAX_GENERATIONS": "2",
        "QAFLOW_THRESHOLD": "0.5",  # MiniLM scores the fake's echo answers 0.4-0.6: some pass, some exhaust
        "QAFLOW_RETRY_AFTER_CAP_S": "0.3",
    }
    services = [stack.start(name) for name in ("storage-writer", "api", "llm-worker", "retry-worker", "score-worker")]
    for proc in services:
        proc.wait_ready(240)  # the score-worker loads the model first
    stack.mark("services ready")
    ids_file = stack.root / "accepted-ids.txt"
    traffic = stack.start(
        "traffic-gen", "--json", "--ids-file", str(ids_file),
        QAFLOW_TRAFFIC_API_URL=stack.procs["api"].url, QAFLOW_TRAFFIC_DATASET=str(SAMPLE),
        QAFLOW_TRAFFIC_RATE="20", QAFLOW_TRAFFIC_TOTAL="60", QAFLOW_TRAFFIC_REPEAT_SHARE="0.3",
        QAFLOW_TRAFFIC_WAIT_S=str(DONE_WITHIN_S),
    )
    code, out = traffic.output(timeout_s=DONE_WITHIN_S + 60)
    stack.mark("all terminal")
    assert code == 0, traffic.tail()
    summary = json.loads(out)
    accepted = set(ids_file.read_text().split())
    assert len(accepted) >= 0.9 * summary["unique_questions"] and summary["not_terminal"] == 0
    rows = pg_rows(pg_url, "SELECT question_id, status FROM results")
    assert accepted <= {r[0] for r in rows} and len(rows) == len({r[0] for r in rows})
    scorers = pg_rows(pg_url, "SELECT DISTINCT scorer->>'name', scorer->>'model' FROM attempts")
    assert len(scorers) == 1 and scorers[0][0] == "bertscore", scorers
    assert {r[1] for r in rows} == {"validated", "exhausted"}
    mean = pg_rows(pg_url, "SELECT avg(score), min(score), max(score) FROM attempts")[0]
    with capsys.disabled():
        print(f"\ne2e (bertscore {scorers[0][1]}): {len(accepted)} questions, terminal "
              f"{dict(Counter(r[1] for r in rows))}; attempt scores mean {mean[0]:.3f} (min {mean[1]:.3f}, "
              f"max {mean[2]:.3f}); " + ", ".join(f"{k} at {v} s" for k, v in stack.timings.items()))
