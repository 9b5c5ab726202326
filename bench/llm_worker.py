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

    .venv/bin/python bench/llm_worker.py                 # starts its own Kafka and Redis
    .venv/bin/python bench/llm_worker.py --bootstrap 127.0.0.1:9092 --redis-url redis://127.0.0.1:6379/0

Prints a table and writes bench/results/llm_worker.json.
"""

from __future__ import annotations

import argparse
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
from qaflow.devstack.ports import free_port
from qaflow.services.catalog import SERVICES, Backends, ServiceProcess, environment

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
    p.add_argument("--output", type=Path, default=RESULTS)
    args = p.parse_args()

    lat_s, cap = args.latency_ms / 1000.0, args.server_concurrency
    workers = args.worker_concurrency or cap
    load_before = os.getloadavg()
    ideal = cap / lat_s
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="qaflow-bench-") as tmp:
        root = Path(tmp)
        if not args.bootstrap:
            kafka = KafkaServer(root / "kafka")
            kafka.start()
            stack.callback(kafka.stop)
            args.bootstrap = kafka.bootstrap
        if not args.redis_url:
            redis = RedisServer(root / "redis")
            redis.start()
            stack.callback(redis.stop)
            args.redis_url = redis.url
        backends = Backends(f"kafka://{args.bootstrap}", "", args.redis_url)
        logs = root / "logs"  # gone with the run; a service that fails to start shows its log's tail
        base = {"latency_ms": args.latency_ms, "concurrency": cap}
        results: dict[str, Any] = {}

        n = int(ideal * args.duration_s)
        print(f"concurrent: {n} questions, L={args.latency_ms:g} ms, C={cap}, worker concurrency {workers} ...")
        results["concurrent"] = run_scenario("concurrent", args, backends, logs, knobs=base, questions=n,
                                             env={"QAFLOW_LLM_CONCURRENCY": str(workers)}, max_s=args.duration_s * 4)
        print(f"sequential: {args.sequential_questions} questions, worker concurrency 1 ...")
        results["sequential"] = run_scenario("sequential", args, backends, logs, knobs=base,
                                             questions=args.sequential_questions,
                                             env={"QAFLOW_LLM_CONCURRENCY": "1"}, max_s=120)

        window_quota = max(1, round(args.rpm * args.rpm_window_s / 60))
        rpm_knobs = {**base, "concurrency": 0, "rpm": window_quota, "rpm_window_s": args.rpm_window_s}
        rpm_questions = int(args.rpm / 60 * args.rpm_duration_s)
        rpm_runs = [("rpm-limited", {"QAFLOW_RPM_LIMIT": str(args.rpm)})]
        if not args.skip_unlimited:
            rpm_runs.append(("rpm-unlimited", {}))
        for name, env in rpm_runs:
            print(f"{name}: quota {args.rpm}/min ({window_quota} per {args.rpm_window_s:g} s), "
                  f"{rpm_questions} questions ...")
            r = run_scenario(name, args, backends, logs, knobs=rpm_knobs, questions=rpm_questions,
                             env={"QAFLOW_LLM_CONCURRENCY": str(workers), "QAFLOW_AIMD_RECOVER_AFTER_S": "2", **env},
                             max_s=args.rpm_duration_s * 3)
            rejected, replies = count_429_after(r["_samples"], args.rpm_window_s)
            r["rejected_429_after_warmup"] = rejected
            r["share_429_after_warmup"] = round(rejected / replies, 4) if replies else None
            r["calls_per_min"] = round(r["answers_per_s"] * 60, 1)
            results[name] = r

    for r in results.values():
        r.pop("_samples", None)
    conc, seq = results["concurrent"], results["sequential"]
    summary = {
        "ideal_concurrent_per_s": ideal,
        "concurrent_share_of_ideal": round(conc["answers_per_s"] / ideal, 3),
        "ideal_sequential_per_s": 1 / lat_s,
        "speedup_over_sequential": round(conc["answers_per_s"] / seq["answers_per_s"], 2)
        if seq["answers_per_s"] else None,
        "rpm_quota": args.rpm,
        "rpm_limited_share_of_quota": round(results["rpm-limited"]["calls_per_min"] / args.rpm, 3),
        "rpm_limited_share_429": results["rpm-limited"]["share_429_after_warmup"],
    }
    out = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(), "python": platform.python_version(),
           "cpus": os.cpu_count(), "load_average_before": load_before, "load_average_after": os.getloadavg(),
           "params": {k: v for k, v in vars(args).items() if k not in ("output",)}, "summary": summary,
           "scenarios": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2, default=str) + "\n")

    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"llm-worker benchmark: one worker process, fake LLM L={args.latency_ms:g} ms "
              f"(load average {load_before[0]:.1f} on {os.cpu_count()} CPUs)")
    for col in ("scenario", "answers/s", "vs ideal", "429s", "429 share (after warm-up)", "max in flight"):
        t.add_column(col)
    t.add_row(f"concurrent (C={cap}, {workers} in flight)", f"{conc['answers_per_s']:.1f}",
              f"{summary['concurrent_share_of_ideal']:.0%} of {ideal:.0f}/s", str(conc["by_status"].get("429", 0)),
              "-", str(conc["max_concurrent_at_server"]))
    t.add_row("sequential (1)", f"{seq['answers_per_s']:.2f}",
              f"{seq['answers_per_s'] * lat_s:.0%} of {1 / lat_s:.0f}/s", str(seq["by_status"].get("429", 0)), "-",
              str(seq["max_concurrent_at_server"]))
    for name in rpm_runs:
        r = results[name[0]]
        t.add_row(f"{name[0]} (R={args.rpm}/min)", f"{r['answers_per_s']:.1f} ({r['calls_per_min']:.0f}/min)",
                  f"{r['calls_per_min'] / args.rpm:.0%} of R", str(r["by_status"].get("429", 0)),
                  f"{r['share_429_after_warmup']:.1%}" if r["share_429_after_warmup"] is not None else "-",
                  str(r["max_concurrent_at_server"]))
    Console(width=max(120, Console().width)).print(t)
    print(f"concurrent / sequential: {summary['speedup_over_sequential']}x; results in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
