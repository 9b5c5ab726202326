"""Answers scored per second through the PyFlink score job vs raw bert-score on the same model.

One run measures, in order (never two at once, they would share the CPU):

1. raw: ``BertScoreScorer.score`` on the same pairs, in batches of ``--batch-size``
   (again after the job, as the CPU may be shared; the mean is the reference);
2. the job's pure-Python work per record (decode + route + JSON), without Flink;
3. the job: ``--n`` answers produced to Kafka first (a backlog), then the job started on a
   MiniCluster; throughput is taken from the Kafka timestamps of the ``qa.scores`` records
   between the 10th and the 90th percentile (start-up and tail excluded).

It then splits the job's time per answer into model time (the UDF's own
``score_batch_ms_total`` metric, read over the REST API), Python record work, and the
rest: Arrow/Beam serialization, Python<->JVM hops, batching waits and Kafka.

    .venv/bin/python bench/flink_throughput.py --n 2000 --batch-size 64
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from qaflow.core.messages import AnswerMessage, QuestionMessage
from qaflow.core.settings import ScorerSettings
from qaflow.datasets.synth import synth_questions
from qaflow.devstack.ports import free_port
from qaflow.flinkjob.records import decode_answer, pack, route_scored, unpack
from qaflow.flinkjob.runner import FlinkRunError, LocalJob, fetch_jars
from qaflow.llm.base import LlmRequest
from qaflow.llm.offline import simulated_answer
from qaflow.pipeline.score import GatePolicy

TOPICS = ("qa.answers", "qa.scores", "qa.results", "qa.questions", "qa.dead-letter")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2000, help="Answers to score (default 2000).")
    p.add_argument("--batch-size", type=int, default=64, help="Pairs per scoring call, raw and in the job (64).")
    p.add_argument("--batch-wait-ms", type=int, default=1000, help="The job's --batch-wait-ms (1000).")
    p.add_argument("--seed", type=int, default=7, help="Seed of the synthetic questions and answers (7).")
    p.add_argument("--bootstrap", default="", help="Kafka to use; empty starts a throwaway local broker.")
    p.add_argument("--workdir", type=Path, default=None, help="Job logs and checkpoints (default: a temp dir).")
    p.add_argument("--timeout", type=float, default=1800, help="Longest wait for the job's outputs, s (1800).")
    p.add_argument("--json", action="store_true", help="Also print the figures as one JSON line.")
    return p.parse_args(argv)


def make_answers(n: int, seed: int) -> list[AnswerMessage]:
    out = []
    for q in synth_questions(n, seed):
        msg = QuestionMessage.new(q.title, q.content, q.reference_answer, category=q.category)
        req = LlmRequest(msg.question_id, q.title, q.content, 1, 1, "", reference_answer=q.reference_answer)
        text = simulated_answer(req, seed)
        out.append(AnswerMessage(question=msg, answer=text, model="offline", provider="offline", latency_ms=1.0))
    return out


def raw_rate(answers: list[AnswerMessage], batch: int) -> tuple[float, float]:
    """(pairs/s, s per pair) of bert-score alone, after one warm-up batch."""
    from qaflow.scoring.bertscore import BertScoreScorer

    scorer = BertScoreScorer(ScorerSettings(scorer="bertscore", scorer_batch_size=batch))
    scorer.start()
    cands = [a.answer for a in answers]
    refs = [a.question.reference_answer for a in answers]
    scorer.score(cands[:batch], refs[:batch])
    began = time.perf_counter()
    for i in range(0, len(cands), batch):
        scorer.score(cands[i : i + batch], refs[i : i + batch])
    took = time.perf_counter() - began
    scorer.close()
    return len(cands) / took, took / len(cands)


def raw_one_call_rate(answers: list[AnswerMessage], batch: int) -> float:
    """Pairs/s of plain ``bert_score.BERTScorer.score`` on all pairs in ONE call (issue 13's yardstick)."""
    import bert_score  # type: ignore[import-untyped]

    from qaflow.scoring.bertscore import LANG, PACKAGED_NUM_LAYERS, resolve_model

    model_type = resolve_model("")[0]
    scorer = bert_score.BERTScorer(model_type=model_type, num_layers=PACKAGED_NUM_LAYERS, lang=LANG, device="cpu")
    cands = [a.answer for a in answers]
    refs = [a.question.reference_answer for a in answers]
    scorer.score(cands[:batch], refs[:batch], batch_size=batch)
    began = time.perf_counter()
    scorer.score(cands, refs, batch_size=batch)
    return len(cands) / (time.perf_counter() - began)


def python_work(answers: list[AnswerMessage]) -> float:
    """Seconds per record of the job's own Python steps (decode, pack, unpack, route), no Flink."""
    policy = GatePolicy(threshold=0.8, max_generations=3)
    identity = {"name": "bertscore", "model": "x"}
    raws = [a.encode().decode() for a in answers]
    began = time.perf_counter()
    for raw in raws:
        got = decode_answer(raw, "qa.answers")
        message, _ = unpack(pack(got))  # type: ignore[arg-type]
        for out in route_scored(None, message, 0.5, identity, "", policy, "qa.answers").outputs:
            out.value  # noqa: B018  (the sink row encodes each output once)
    return (time.perf_counter() - began) / len(raws)


def produce(bootstrap: str, topic: str, answers: list[AnswerMessage]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    for a in answers:
        producer.send(topic, key=a.question_id.encode(), value=a.encode())
    producer.flush(60)
    producer.close()


def create_topics(bootstrap: str, prefix: str) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    # Outputs keep the input record's timestamp (Flink forwards it); the broker's append time
    # is what tells when the job wrote them.
    append = {"message.timestamp.type": "LogAppendTime"}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(prefix + t, 3, 1, topic_configs=append if t != "qa.answers" else {})
                         for t in TOPICS])
    admin.close()


def collect_scores(bootstrap: str, topic: str, n: int, job: LocalJob, timeout: float) -> list[int]:
    """Kafka timestamps (ms) of the first ``n`` records of ``topic``."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    stamps: list[int] = []
    deadline = time.monotonic() + timeout
    try:
        while len(stamps) < n and time.monotonic() < deadline and job.running:
            for batch in consumer.poll(timeout_ms=1000).values():
                stamps.extend(r.timestamp for r in batch)
    finally:
        consumer.close()
    if len(stamps) < n:
        sys.exit(f"only {len(stamps)} of {n} scores arrived; see {job.client_log} and {job.log_dir}")
    return sorted(stamps)[:n]


def udf_metrics(job: LocalJob, want: int, timeout: float = 60) -> dict[str, float]:
    """The job's qaflow.* counters, summed over subtasks, once ``scored_pairs`` reaches ``want``.

    The REST API serves metrics fetched in the background (every 10 s by default), so the
    first answers may be empty or stale.
    """
    job_id = job.running_job_id()
    deadline = time.monotonic() + timeout
    totals: dict[str, float] = {}
    while time.monotonic() < deadline:
        totals = {}
        for vertex in job.rest(f"/jobs/{job_id}")["vertices"]:
            base = f"/jobs/{job_id}/vertices/{vertex['id']}/metrics"
            ids = [m["id"] for m in job.rest(base) if ".qaflow." in m["id"]]
            if ids:
                for metric in job.rest(f"{base}?get={','.join(ids)}"):
                    name = metric["id"].rsplit(".", 1)[-1]
                    totals[name] = totals.get(name, 0.0) + float(metric["value"])
        if totals.get("scored_pairs", 0) >= want:
            break
        time.sleep(2)
    return totals


def start_kafka(workdir: Path) -> Any:
    from qaflow.devstack import KafkaServer

    server = KafkaServer(workdir / "kafka")
    server.start()
    return server


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="qaflow-flink-bench-"))
    answers = make_answers(args.n, args.seed)
    words = statistics.mean(len(a.answer.split()) + len(a.question.reference_answer.split()) for a in answers)
    print(f"{args.n} answers, {words:.0f} words per pair on average; batch size {args.batch_size}")

    raw_before, _ = raw_rate(answers, args.batch_size)
    print(f"qaflow's scorer in batches of {args.batch_size} (MiniLM, in this process): {raw_before:.1f} pairs/s")
    one_call_before = raw_one_call_rate(answers, args.batch_size)
    print(f"plain bert-score, all pairs in one call: {one_call_before:.1f} pairs/s")
    py_per_record = python_work(answers)
    print(f"job's Python record work (decode + route), no Flink: {py_per_record * 1e6:.0f} us/record")

    kafka = None if args.bootstrap else start_kafka(workdir)
    bootstrap = args.bootstrap or kafka.bootstrap
    prefix = f"bench_{uuid.uuid4().hex[:8]}."
    def new_job() -> LocalJob:
        return LocalJob(
            ["--bootstrap-servers", bootstrap, "--topic-prefix", prefix, "--scorer", "bertscore",
             "--batch-size", str(args.batch_size), "--batch-wait-ms", str(args.batch_wait_ms),
             "--group-id", prefix + "score-job", "--checkpoint-interval-s", "10"],
            workdir=workdir / "job", jars=fetch_jars(), rest_port=free_port(),
            env={k: v for k, v in os.environ.items() if not k.startswith("QAFLOW_")},
        )

    job = new_job()
    try:
        create_topics(bootstrap, prefix)
        produce(bootstrap, prefix + "qa.answers", answers)
        began = time.monotonic()
        for attempt in range(3):
            job.start()
            try:
                job.wait_running(300)
                break
            except FlinkRunError:
                # A free port picked a moment ago may be taken by then (a shared machine): try another.
                bind = job.client_log.is_file() and "BindException" in job.client_log.read_text(errors="replace")
                job.stop()
                if not bind or attempt == 2:
                    raise
                print("the job's REST port was taken meanwhile; starting it again on another port")
                job = new_job()
        running = time.monotonic() - began
        stamps = collect_scores(bootstrap, prefix + "qa.scores", args.n, job, args.timeout)
        metrics = udf_metrics(job, args.n)
    finally:
        job.stop()
        if kafka is not None:
            kafka.stop()

    raw_after, _ = raw_rate(answers, args.batch_size)  # the CPU may be shared: measure on both sides
    raw = (raw_before + raw_after) / 2
    one_call = (one_call_before + raw_one_call_rate(answers, args.batch_size)) / 2
    raw_per_pair = 1 / raw
    print(f"raw bert-score again, after the job: {raw_after:.1f} pairs/s (mean {raw:.1f})")

    lo, hi = int(0.1 * args.n), int(0.9 * args.n) - 1
    flink = (hi - lo) / max(1e-3, (stamps[hi] - stamps[lo]) / 1000)
    per_answer = 1 / flink
    pairs = metrics.get("scored_pairs", 0.0)
    model = metrics.get("score_batch_ms_total", 0.0) / 1000 / pairs if pairs else float("nan")
    batch_avg = pairs / metrics["score_batches"] if metrics.get("score_batches") else float("nan")
    rest = per_answer - model - py_per_record
    figures = {
        "n": args.n, "batch_size": args.batch_size, "raw_pairs_per_s": round(raw, 1),
        "raw_before": round(raw_before, 1), "raw_after": round(raw_after, 1),
        "flink_answers_per_s": round(flink, 1), "ratio": round(flink / raw, 3),
        "raw_one_call_pairs_per_s": round(one_call, 1), "ratio_to_one_call": round(flink / one_call, 3),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "job_start_to_running_s": round(running, 1), "avg_batch": round(batch_avg, 1),
        "ms_per_answer": round(per_answer * 1000, 2), "model_ms_per_pair_in_job": round(model * 1000, 2),
        "model_ms_per_pair_raw": round(raw_per_pair * 1000, 2), "python_ms_per_record": round(py_per_record * 1000, 3),
        "other_ms_per_answer": round(rest * 1000, 2),
    }
    print(f"job on a MiniCluster (10th-90th percentile of qa.scores): {flink:.1f} answers/s")
    print(f"ratio job/qaflow scorer in batches: {flink / raw:.0%}")
    print(f"ratio job/plain bert-score in one call: {flink / one_call:.0%}  (target >= 80%, issue 13)")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"job start to running: {running:.0f}s (excluded); average scoring batch: {batch_avg:.1f} pairs")
    print("where an answer's time goes in the job:")
    print(f"  model (UDF metric score_batch_ms_total): {model * 1000:7.2f} ms/pair  (raw: {raw_per_pair * 1000:.2f})")
    print(f"  Python decode + route:                   {py_per_record * 1000:7.2f} ms/record")
    print(f"  the rest (Arrow/Beam serialization, Python<->JVM hops, batching waits, Kafka): {rest * 1000:.2f} ms")
    print("  (operators run as separate processes and overlap, so the parts need not add up)")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
