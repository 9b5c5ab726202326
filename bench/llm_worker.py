"""llm-worker throughput and rate limiting, against the fake LLM server, side by side.

Each scenario runs the real service (``python -m qaflow.services.llm_worker``, started from
the catalog as its container starts it) on a real Kafka broker, against a fake LLM server in
its own process, with its own topic prefix; throughput is measured at the server (answers
per second over the steady part of the run, after ``--warmup-s``).

1. concurrent: server latency L and concurrency cap C (excess requests queue); the worker
   with QAFLOW_LLM_CONCURRENCY = C. Ideal throughput: C / L.
2. sequential: the same server, QAFLOW_LLM_CONCURRENCY = 1 - the seeds' one-call-at-a-time
   consumer. Ideal: 1 / L.
3. rpm-limited: a quota of R requests per minute at the server (enforced over a sliding
   window of ``--rpm-window-s`` seconds, at R x window / 60 requests: stricter than a minute)
   and QAFLOW_RPM_LIMIT = R, shared through Redis. Reported: achieved rate against R, and
   the share of calls answered 429 after the warm-up.
4. rpm-unlimited: the same quota without QAFLOW_RPM_LIMIT (only AIMD and Retry-After), for
   contrast.
5. drain-clean and drain-faulty, side by side (issue 10): the llm-worker and the retry-worker
   drain ``--drain-questions`` (300) questions at QAFLOW_LLM_CONCURRENCY = ``--drain-concurrency``
   from a server of latency ``--drain-latency-ms`` with no concurrency cap; faulty answers 10%
   429 (Retry-After 1 s), 10% 503 and 10% of calls not at all (the worker gives up after
   QAFLOW_LLM_TIMEOUT_S = ``--timeout-s``, 5 s). Drained: every question has an answer on
   qa.answers or a dead letter. Throughput: questions / (last terminal - first call). Also
   reported: calls made, the lowest and mean AIMD limit (sampled from /metrics) and the
   windows the limiter judged a quota.

    .venv/bin/python bench/llm_worker.py                 # starts its own Kafka and Redis
    .venv/bin/python bench/llm_worker.py --bootstrap 127.0.0.1:9092 --redis-url redis://127.0.0.1:6379/0
    .venv/bin/python bench/llm_worker.py --only drain    # just the faulty-LLM pair

Prints a table and writes bench/results/llm_worker.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import requests

from qaflow.bus import open_bus
from qaflow.core import topics
from qaflow.core.messages import QuestionMessage
from qaflow.core.settings import BackendSettings
from qaflow.devstack import KafkaServer, RedisServer
from qaflow.devstack.catalog import SERVICES, Backends, ServiceProcess, environment
from qaflow.devstack.ports import free_port

RESULTS = Path(__file__).resolve().parent / "results" / "llm_worker.json"
FAKE_RUNNER = """
import json, signal, sys, threading
from qaflow.llm.fake_server import FakeLlmServer
server = FakeLlmServer("127.0.0.1", int(sys.argv[1]), **json.loads(sys.argv[2])).start()
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
print("ready", flush=True)
stop.wait()
server.stop()
"""


class FakeLlm:
    """The fake LLM server in its own process, so it never competes with the worker for a GIL."""

    def __init__(self, **knobs: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FAKE_RUNNER, str(self.port), json.dumps(knobs)],
            stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def stats(self) -> dict[str, Any]:
        return dict(requests.get(self.url + "/_stats", timeout=5).json())

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def enqueue(bootstrap: str, prefix: str, n: int) -> None:
    url = f"kafka://{bootstrap}"
    bus = open_bus(url, BackendSettings(bus_url=url, topic_prefix=prefix))
    bus.start()
    bus.ensure_topics(topics.default_specs(6))
    producer = bus.producer()
    producer.start()
    run = uuid.uuid4().hex[:6]
    for i in range(n):
        q = QuestionMessage.new(f"Benchmark question {run}-{i}: why is the sky blue?", "", "Rayleigh scattering.")
        producer.send(topics.QUESTIONS, q.question_id, q.encode())
    producer.flush()
    producer.close()
    bus.close()


def run_scenario(name: str, args: argparse.Namespace, backends: Backends, logs: Path, *, knobs: dict[str, Any],
                 questions: int, env: dict[str, str], max_s: float) -> dict[str, Any]:
    """Queue ``questions``, start the worker, sample the server until all are handled (or ``max_s``)."""
    prefix = f"bench-{name}-{uuid.uuid4().hex[:6]}."
    enqueue(args.bootstrap, prefix, questions)
    fake = FakeLlm(**knobs)
    spec = SERVICES["llm-worker"]
    config = {"QAFLOW_LLM_PROVIDER": "openai", "QAFLOW_LLM_BASE_URL": fake.url, "QAFLOW_LOG_FORMAT": "text",
              "QAFLOW_LOG_LEVEL": "warning", "QAFLOW_KAFKA_PARTITIONS": "6", **env}
    worker = ServiceProcess(spec, environment(spec, Backends(backends.bus_url, "", backends.cache_url, prefix),
                                              port=free_port(), config=config), logs / f"llm-worker-{name}.log")
    samples: list[tuple[float, int, int]] = []  # (t, answered 200, every reply)
    try:
        worker.start()
        worker.wait_ready(60)
        t0 = time.monotonic()
        while True:
            s = fake.stats()
            done = sum(int(v) for v in s["by_status"].values())
            samples.append((time.monotonic() - t0, int(s["by_status"].get("200", 0)), done))
            if done >= questions or samples[-1][0] > max_s:
                break
            if len(samples) % 40 == 0:  # every 10 s
                print(f"  {name}: {done}/{questions} replies after {samples[-1][0]:.0f} s", flush=True)
            time.sleep(0.25)
        final = fake.stats()
    finally:
        worker.stop(grace_s=20)
        fake.close()
    first = next((i for i, (_, ok, _) in enumerate(samples) if ok > 0), 0)
    start_t = samples[first][0] + args.warmup_s
    steady = [s for s in samples if s[0] >= start_t]
    if len(steady) < 2:
        steady = samples[first:]
    (t1, ok1, all1), (t2, ok2, all2) = steady[0], steady[-1]
    rate = (ok2 - ok1) / (t2 - t1) if t2 > t1 else 0.0
    after = all2 - all1
    by_status = final["by_status"]
    return {
        "questions": questions,
        "replies": sum(int(v) for v in by_status.values()),
        "by_status": by_status,
        "answers_per_s": round(rate, 2),
        "steady_window_s": round(t2 - t1, 1),
        "replies_after_warmup": after,
        "rejected_429_after_warmup": None,  # filled in by the rpm scenarios
        "max_concurrent_at_server": final["max_concurrent"],
        "elapsed_s": round(samples[-1][0], 1),
        "_samples": samples,
    }


def metric(url: str, name: str) -> float | None:
    """One unlabelled sample of the worker's /metrics, or None when it cannot be read."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = requests.get(url + "/metrics", timeout=2).text
    except requests.RequestException:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return None


def run_drain(name: str, args: argparse.Namespace, backends: Backends, logs: Path, *, knobs: dict[str, Any],
              env: dict[str, str]) -> dict[str, Any]:
    """Queue the questions, run the llm-worker and the retry-worker until every question has an
    answer or a dead letter (or ``--drain-max-s``), sampling the worker's AIMD limit."""
    prefix = f"bench-{name}-{uuid.uuid4().hex[:6]}."
    questions = args.drain_questions
    enqueue(args.bootstrap, prefix, questions)
    fake = FakeLlm(**knobs)
    scoped = Backends(backends.bus_url, "", backends.cache_url, prefix)
    config = {"QAFLOW_LLM_PROVIDER": "openai", "QAFLOW_LLM_BASE_URL": fake.url, "QAFLOW_LOG_FORMAT": "text",
              "QAFLOW_LOG_LEVEL": "warning", "QAFLOW_KAFKA_PARTITIONS": "6",
              "QAFLOW_LLM_TIMEOUT_S": f"{args.timeout_s:g}",
              "QAFLOW_LLM_CONNECT_TIMEOUT_S": f"{min(args.timeout_s, 5.0):g}",
              "QAFLOW_LLM_CONCURRENCY": str(args.drain_concurrency), **env}
    procs = [ServiceProcess(SERVICES[svc], environment(SERVICES[svc], scoped, port=free_port(), config=config),
                            logs / f"{svc}-{name}.log") for svc in ("retry-worker", "llm-worker")]
    worker = procs[-1]
    url = f"kafka://{args.bootstrap}"
    bus = open_bus(url, BackendSettings(bus_url=url, topic_prefix=prefix))
    bus.start()
    consumer = bus.consumer(f"bench-{uuid.uuid4().hex[:6]}", [topics.ANSWERS, topics.DEAD_LETTER])
    answered: set[str] = set()
    dead: set[str] = set()
    limits: list[tuple[float, float]] = []  # (t, AIMD limit)
    first_call = last_done = None
    t_start = time.monotonic()
    try:
        consumer.start()
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.wait_ready(60)
        next_sample = next_print = 0.0
        while len(answered | dead) < questions and time.monotonic() - t_start < args.drain_max_s:
            for r in consumer.poll(0.2, 500):
                (answered if r.topic == topics.ANSWERS else dead).add(str(r.key))
                last_done = time.monotonic()
            now = time.monotonic()
            if now >= next_sample:
                next_sample = now + 0.5
                if first_call is None and fake.stats()["total"] > 0:
                    first_call = now
                if (limit := metric(worker.url, "qaflow_llm_concurrency_limit")) is not None:
                    limits.append((now, limit))
            if now >= next_print:
                next_print = now + 10
                print(f"  {name}: {len(answered | dead)}/{questions} done after {now - t_start:.0f} s, "
                      f"AIMD limit {limits[-1][1] if limits else '?'}", flush=True)
        stats = fake.stats()
        quota_events = metric(worker.url, "qaflow_llm_quota_events")
        pauses = metric(worker.url, "qaflow_llm_rate_limit_waits_total")
    finally:
        consumer.close()
        bus.close()
        for proc in reversed(procs):
            proc.stop(grace_s=20)
        fake.close()
    done = len(answered | dead)
    start = first_call if first_call is not None else t_start
    drain_s = (last_done - start) if last_done is not None and done >= questions else None
    mean_limit = None
    if len(limits) >= 2 and limits[-1][0] > limits[0][0]:  # weighted by how long each value held
        held = sum(a[1] * (b[0] - a[0]) for a, b in itertools.pairwise(limits))
        mean_limit = held / (limits[-1][0] - limits[0][0])
    return {
        "questions": questions,
        "terminal": done,
        "answered": len(answered),
        "dead_letters": len(dead),
        "drain_s": round(drain_s, 1) if drain_s is not None else None,
        "questions_per_s": round(questions / drain_s, 3) if drain_s else None,
        "calls": stats["total"],
        "by_status": stats["by_status"],
        "faults": stats["faults"],
        "aimd_limit_min": min(v for _, v in limits) if limits else None,
        "aimd_limit_mean": round(mean_limit, 1) if mean_limit is not None else None,
        "aimd_quota_events": quota_events,
        "retry_after_pauses": pauses,
        "max_concurrent_at_server": stats["max_concurrent"],
    }


def count_429_after(samples: list[tuple[float, int, int]], warmup_s: float) -> tuple[int, int]:
    """(429 replies, all replies) after the warm-up, from the samples: replies minus answers."""
    first = next((i for i, (_, ok, _) in enumerate(samples) if ok > 0), 0)
    steady = [s for s in samples if s[0] >= samples[first][0] + warmup_s] or samples[first:]
    (_, ok1, all1), (_, ok2, all2) = steady[0], steady[-1]
    return (all2 - all1) - (ok2 - ok1), all2 - all1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Starts a private Kafka (and Redis) unless given; writes " + str(RESULTS),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=("all", "throughput", "rpm", "drain"), default="all",
                   help="Run one group: throughput (concurrent, sequential), rpm (the quota), drain (faulty LLM)")
    p.add_argument("--bootstrap", help="host:port of a Kafka broker (default: start one)")
    p.add_argument("--redis-url", help="Redis for the shared rpm limit (default: start one)")
    p.add_argument("--latency-ms", type=float, default=200.0, help="Fake LLM latency L (default 200)")
    p.add_argument("--server-concurrency", type=int, default=16, help="Fake LLM concurrency cap C (default 16)")
    p.add_argument("--worker-concurrency", type=int, default=None,
                   help="QAFLOW_LLM_CONCURRENCY of the concurrent runs (default: C)")
    p.add_argument("--duration-s", type=float, default=20.0, help="Target length of the concurrent run (default 20)")
    p.add_argument("--sequential-questions", type=int, default=50, help="Questions for the sequential run")
    p.add_argument("--rpm", type=int, default=1200, help="Quota R in requests per minute (default 1200)")
    p.add_argument("--rpm-window-s", type=float, default=10.0, help="Sliding window the server enforces R over")
    p.add_argument("--rpm-duration-s", type=float, default=30.0, help="Length of each rpm run (default 30)")
    p.add_argument("--warmup-s", type=float, default=3.0, help="Excluded from the rates (default 3)")
    p.add_argument("--skip-unlimited", action="store_true", help="Skip the rpm run without QAFLOW_RPM_LIMIT")
    p.add_argument("--drain-questions", type=int, default=300, help="Questions of each drain run (default 300)")
    p.add_argument("--drain-latency-ms", type=float, default=3000.0,
                   help="Fake LLM latency of the drain runs (default 3000: a short LLM answer)")
    p.add_argument("--drain-concurrency", type=int, default=16,
                   help="QAFLOW_LLM_CONCURRENCY of both drain runs (default 16)")
    p.add_argument("--fault-rates", type=float, nargs=3, default=(0.1, 0.1, 0.1), metavar=("R429", "R503", "RTIMEOUT"),
                   help="Shares of 429s, 503s and timeouts in drain-faulty (default 0.1 0.1 0.1)")
    p.add_argument("--timeout-s", type=float, default=5.0,
                   help="QAFLOW_LLM_TIMEOUT_S of the drain runs; a timeout fault never answers within it (default 5)")
    p.add_argument("--drain-max-s", type=float, default=400.0, help="Give up a drain run after this long")
    p.add_argument("--output", type=Path, default=RESULTS)
    args = p.parse_args()

    lat_s, cap = args.latency_ms / 1000.0, args.server_concurrency
    workers = args.worker_concurrency or cap
    load_before = os.getloadavg()
    ideal = cap / lat_s
    wanted = {"throughput", "rpm", "drain"} if args.only == "all" else {args.only}
    results: dict[str, Any] = {}
    loads: dict[str, float] = {}  # 1-minute load average at the end of each scenario
    rpm_runs: list[tuple[str, dict[str, str]]] = []

    def done(name: str, result: dict[str, Any]) -> None:
        results[name] = result
        loads[name] = os.getloadavg()[0]
        result["load_average_1m_after"] = round(loads[name], 2)

    # Servers stop (the stack) before their directory goes; a straggler file is no failure.
    with tempfile.TemporaryDirectory(prefix="qaflow-bench-", ignore_cleanup_errors=True) as tmp, ExitStack() as stack:
        root = Path(tmp)
        if not args.bootstrap:
            kafka = KafkaServer(root / "kafka")
            kafka.start()
            stack.callback(kafka.stop)
            args.bootstrap = kafka.bootstrap
        if not args.redis_url and "rpm" in wanted:
            redis = RedisServer(root / "redis")
            redis.start()
            stack.callback(redis.stop)
            args.redis_url = redis.url
        backends = Backends(f"kafka://{args.bootstrap}", "", args.redis_url or "memory://")
        logs = root / "logs"  # gone with the run; a service that fails to start shows its log's tail
        base = {"latency_ms": args.latency_ms, "concurrency": cap}

        if "throughput" in wanted:
            n = int(ideal * args.duration_s)
            print(f"concurrent: {n} questions, L={args.latency_ms:g} ms, C={cap}, worker concurrency {workers} ...")
            done("concurrent", run_scenario("concurrent", args, backends, logs, knobs=base, questions=n,
                                            env={"QAFLOW_LLM_CONCURRENCY": str(workers)}, max_s=args.duration_s * 4))
            print(f"sequential: {args.sequential_questions} questions, worker concurrency 1 ...")
            done("sequential", run_scenario("sequential", args, backends, logs, knobs=base,
                                            questions=args.sequential_questions,
                                            env={"QAFLOW_LLM_CONCURRENCY": "1"}, max_s=120))

        if "rpm" in wanted:
            window_quota = max(1, round(args.rpm * args.rpm_window_s / 60))
            rpm_knobs = {**base, "concurrency": 0, "rpm": window_quota, "rpm_window_s": args.rpm_window_s}
            rpm_questions = int(args.rpm / 60 * args.rpm_duration_s)
            rpm_runs.append(("rpm-limited", {"QAFLOW_RPM_LIMIT": str(args.rpm)}))
            if not args.skip_unlimited:
                rpm_runs.append(("rpm-unlimited", {}))
            for name, env in rpm_runs:
                print(f"{name}: quota {args.rpm}/min ({window_quota} per {args.rpm_window_s:g} s), "
                      f"{rpm_questions} questions ...")
                r = run_scenario(name, args, backends, logs, knobs=rpm_knobs, questions=rpm_questions,
                                 env={"QAFLOW_LLM_CONCURRENCY": str(workers), "QAFLOW_AIMD_RECOVER_AFTER_S": "2",
                                      **env},
                                 max_s=args.rpm_duration_s * 3)
                rejected, replies = count_429_after(r["_samples"], args.rpm_window_s)
                r["rejected_429_after_warmup"] = rejected
                r["share_429_after_warmup"] = round(rejected / replies, 4) if replies else None
                r["calls_per_min"] = round(r["answers_per_s"] * 60, 1)
                done(name, r)

        if "drain" in wanted:
            r429, r503, rtimeout = args.fault_rates
            drain_knobs = {"latency_ms": args.drain_latency_ms, "concurrency": 0}
            faulty = {**drain_knobs, "rate_429": r429, "retry_after_s": 1.0, "rate_503": r503,
                      "rate_timeout": rtimeout, "timeout_sleep_s": args.timeout_s + 25, "seed": 10}
            for name, knobs in (("drain-clean", drain_knobs), ("drain-faulty", faulty)):
                print(f"{name}: {args.drain_questions} questions, L={args.drain_latency_ms:g} ms, worker concurrency "
                      f"{args.drain_concurrency}" + (f", faults {r429:.0%} 429 / {r503:.0%} 503 / {rtimeout:.0%} "
                                                     f"timeouts at {args.timeout_s:g} s" if knobs is faulty else ""))
                done(name, run_drain(name, args, backends, logs, knobs=knobs, env={}))

    for r in results.values():
        r.pop("_samples", None)
    summary: dict[str, Any] = {}
    if "throughput" in wanted:
        conc, seq = results["concurrent"], results["sequential"]
        summary.update({
            "ideal_concurrent_per_s": ideal,
            "concurrent_share_of_ideal": round(conc["answers_per_s"] / ideal, 3),
            "ideal_sequential_per_s": 1 / lat_s,
            "speedup_over_sequential": round(conc["answers_per_s"] / seq["answers_per_s"], 2)
            if seq["answers_per_s"] else None,
        })
    if "rpm" in wanted:
        summary.update({
            "rpm_quota": args.rpm,
            "rpm_limited_share_of_quota": round(results["rpm-limited"]["calls_per_min"] / args.rpm, 3),
            "rpm_limited_share_429": results["rpm-limited"]["share_429_after_warmup"],
        })
    if "drain" in wanted:
        clean, bad = results["drain-clean"]["questions_per_s"], results["drain-faulty"]["questions_per_s"]
        summary["drain_faulty_share_of_clean"] = round(bad / clean, 3) if clean and bad else None
    out = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(), "python": platform.python_version(),
           "cpus": os.cpu_count(), "load_average_before": load_before, "load_average_after": os.getloadavg(),
           "params": {k: v for k, v in vars(args).items() if k not in ("output",)}, "summary": summary,
           "scenarios": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print_tables(args, results, summary, loads, load_before, rpm_runs)
    print(f"results in {args.output}")
    return 0


def print_tables(args: argparse.Namespace, results: dict[str, Any], summary: dict[str, Any],
                 loads: dict[str, float], load_before: tuple[float, float, float],
                 rpm_runs: list[tuple[str, dict[str, str]]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(150, Console().width))
    cpus = os.cpu_count()
    lat_s, cap = args.latency_ms / 1000.0, args.server_concurrency
    workers = args.worker_concurrency or cap
    ideal = cap / lat_s
    if "concurrent" in results or rpm_runs:
        t = Table(title=f"llm-worker throughput: one worker process, fake LLM L={args.latency_ms:g} ms "
                  f"(load average {load_before[0]:.1f} on {cpus} CPUs before)")
        for col in ("scenario", "answers/s", "vs ideal", "429s", "429 share (after warm-up)", "max in flight",
                    "load 1m after"):
            t.add_column(col)
        if "concurrent" in results:
            conc, seq = results["concurrent"], results["sequential"]
            t.add_row(f"concurrent (C={cap}, {workers} in flight)", f"{conc['answers_per_s']:.1f}",
                      f"{summary['concurrent_share_of_ideal']:.0%} of {ideal:.0f}/s",
                      str(conc["by_status"].get("429", 0)), "-", str(conc["max_concurrent_at_server"]),
                      f"{loads['concurrent']:.1f}")
            t.add_row("sequential (1)", f"{seq['answers_per_s']:.2f}",
                      f"{seq['answers_per_s'] * lat_s:.0%} of {1 / lat_s:.0f}/s", str(seq["by_status"].get("429", 0)),
                      "-", str(seq["max_concurrent_at_server"]), f"{loads['sequential']:.1f}")
        for name, _ in rpm_runs:
            r = results[name]
            t.add_row(f"{name} (R={args.rpm}/min)", f"{r['answers_per_s']:.1f} ({r['calls_per_min']:.0f}/min)",
                      f"{r['calls_per_min'] / args.rpm:.0%} of R", str(r["by_status"].get("429", 0)),
                      f"{r['share_429_after_warmup']:.1%}" if r["share_429_after_warmup"] is not None else "-",
                      str(r["max_concurrent_at_server"]), f"{loads[name]:.1f}")
        console.print(t)
        if "concurrent" in results:
            print(f"concurrent / sequential: {summary['speedup_over_sequential']}x")
    if "drain-clean" in results:
        t = Table(title=f"drain {args.drain_questions} questions: llm-worker + retry-worker, "
                  f"QAFLOW_LLM_CONCURRENCY={args.drain_concurrency}, L={args.drain_latency_ms:g} ms ({cpus} CPUs)")
        for col in ("scenario", "drained in", "questions/s", "vs clean", "calls", "answers / dead", "429/503/timeouts",
                    "AIMD limit min / mean", "quota windows", "load 1m after"):
            t.add_column(col)
        clean_rate = results["drain-clean"]["questions_per_s"]
        for name in ("drain-clean", "drain-faulty"):
            r = results[name]
            f = r["faults"]
            rate = r["questions_per_s"]
            t.add_row(name, f"{r['drain_s']} s" if r["drain_s"] is not None else f"not ({r['terminal']} done)",
                      f"{rate:.2f}" if rate else "-",
                      f"{rate / clean_rate:.0%}" if rate and clean_rate else "-", str(r["calls"]),
                      f"{r['answered']} / {r['dead_letters']}",
                      f"{f.get('429', 0)}/{f.get('503', 0)}/{f.get('timeout', 0)}",
                      f"{r['aimd_limit_min']:g} / {r['aimd_limit_mean']}" if r["aimd_limit_min"] is not None else "-",
                      f"{r['aimd_quota_events']:g}" if r["aimd_quota_events"] is not None else "-",
                      f"{loads[name]:.1f}")
        console.print(t)


if __name__ == "__main__":
    sys.exit(main())
