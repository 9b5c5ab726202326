"""The api under gunicorn at a fixed open-loop rate, per worker class and count (issue 13, item 1).

Starts its own Kafka, PostgreSQL and Redis (qaflow.devstack), then, for each api
configuration given, a gunicorn api on them and the scenarios below, one after the other, with
vegeta (an open-loop load generator: it sends at the rate whatever the answers' latency;
``go install github.com/tsenart/vegeta/v12@latest``):

- ``new``: new questions (each POST a different title): a cache miss, a store insert and an
  enqueue each;
- ``repeat``: POSTs of questions already answered and cached (200 from Redis);
- ``get``: GETs of those questions (the cached result and one attempts query).

Nothing consumes qa.questions here (the pipeline is not running): this measures the api alone.
Every figure has the machine's load average and the CPU seconds of the api's processes and of
PostgreSQL beside it. Results: JSON (``--out``) and a Markdown table on stdout.

    .venv/bin/python bench/api_workers.py --config gevent:2 --config gthread:2:8 --rate new=500 --duration 30
    # this checkout against another source tree, alternating scenario by scenario, twice:
    .venv/bin/python bench/api_workers.py --config gevent:2 --config gevent:2@/tmp/old/src --rate new=500 --rounds 2

A configuration ``...@SRC`` runs its api with ``PYTHONPATH=SRC`` (another checkout's ``src``).
Every api is started first; then each round runs each scenario on every api in turn, so
before/after figures are taken minutes apart at most, under the same machine load.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from qaflow.cache.redis import RedisCache
from qaflow.core.ids import question_id
from qaflow.core.messages import ResultMessage, Status
from qaflow.devstack import KafkaServer, PostgresServer, RedisServer
from qaflow.devstack.ports import free_port
from qaflow.store import open_store
from qaflow.store.base import WriteBatch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import proctree

REFERENCE = "Rayleigh scattering of sunlight by the air favours short, blue wavelengths."
GEVENT = "qaflow.services.web.gunicorn_worker.QaflowGeventWorker"
CLK_TCK = os.sysconf("SC_CLK_TCK")
KNOWN = 2000  # answered, cached questions for the repeat and get scenarios


def vegeta() -> str:
    found = shutil.which("vegeta") or str(Path.home() / "go/bin/vegeta")
    if not Path(found).exists():
        sys.exit("vegeta not found: go install github.com/tsenart/vegeta/v12@latest")
    return found


def cpu_s(root: int) -> float:
    """CPU seconds of ``root`` and its live descendants, plus the exited children it reaped."""
    total = 0.0
    for pid in proctree.tree(root):
        fields = proctree.stat_fields(pid)
        if fields is not None:  # utime stime, and for the root also cutime cstime (its reaped children)
            total += sum(int(f) for f in fields[11:15 if pid == root else 13]) / CLK_TCK
    return total


def targets(path: Path, url: str, titles: list[str], method: str = "POST") -> None:
    with path.open("w") as f:
        for title in titles:
            if method == "GET":
                f.write(json.dumps({"method": "GET", "url": f"{url}/v1/questions/{question_id(title, '')}"}) + "\n")
                continue
            body = json.dumps({"title": title, "reference_answer": REFERENCE}).encode()
            f.write(json.dumps({"method": "POST", "url": f"{url}/v1/questions", "body": base64.b64encode(body).decode(),
                                "header": {"Content-Type": ["application/json"]}}) + "\n")


def attack(target_file: Path, rate: int, duration_s: int) -> dict[str, Any]:
    cmd = [vegeta(), "attack", f"-targets={target_file}", "-format=json", f"-rate={rate}/s",
           f"-duration={duration_s}s", "-timeout=10s", "-max-connections=256"]
    attacked = subprocess.run(cmd, capture_output=True, check=True)
    report = subprocess.run([vegeta(), "report", "-type=json"], input=attacked.stdout, capture_output=True,
                            check=True)
    r = json.loads(report.stdout)
    lat = r["latencies"]
    return {"requests": r["requests"], "rate": round(r["rate"], 1), "throughput": round(r["throughput"], 1),
            "p50_ms": lat["50th"] / 1e6, "p95_ms": lat["95th"] / 1e6, "p99_ms": lat["99th"] / 1e6,
            "max_ms": lat["max"] / 1e6, "status_codes": r["status_codes"], "errors": sorted(set(r["errors"]))[:5]}


def start_api(config: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    config, _, src = config.partition("@")
    kind, workers, *rest = config.split(":")
    port = free_port()
    args = [str(Path(sys.executable).parent / "gunicorn"), "--config", "python:qaflow.services.api.gunicorn_conf",
            "--workers", workers, "--worker-class", GEVENT if kind == "gevent" else kind]
    if rest:
        args += ["--threads", rest[0]]
    args.append("qaflow.services.api.app:create_app()")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("QAFLOW_", "GUNICORN_", "PROMETHEUS_"))}
    if src:
        clean["PYTHONPATH"] = src
    proc = subprocess.Popen(args, env={**clean, **env, "QAFLOW_HTTP_PORT": str(port), "QAFLOW_LOG_LEVEL": "warning"},
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/readyz", timeout=2).status_code == 200:
                return proc, url
        except requests.RequestException:
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit(f"api {config} not ready: {log.read_text()[-2000:]}")


def seed(store_url: str, cache_url: str, run: str) -> list[str]:
    titles = [f"known question {i} [{run}]" for i in range(KNOWN)]
    results = [ResultMessage(question_id=question_id(t, ""), status=Status.VALIDATED, title=t,
                             reference_answer=REFERENCE, answer="Because of Rayleigh scattering.", score=0.91,
                             best_generation=1, generations=1, model="sim", scorer={"name": "lexical"},
                             submitted_at=time.time()) for t in titles]
    store, cache = open_store(store_url), RedisCache(cache_url)
    store.start()
    cache.start()
    store.write(WriteBatch(results=results))
    for r in results:
        cache.put(r, 3600)
    store.close()
    cache.close()
    return titles


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", action="append", required=True,
                    help="gevent:WORKERS or gthread:WORKERS:THREADS (repeatable)")
    ap.add_argument("--rate", action="append", default=[], help="SCENARIO=RATE, e.g. new=500 (repeatable)")
    ap.add_argument("--duration", type=int, default=30, help="seconds per scenario")
    ap.add_argument("--rounds", type=int, default=1, help="times every scenario runs on every api (default 1)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/api_workers.json"))
    a = ap.parse_args()
    rates = [(s, int(r)) for s, r in (x.split("=") for x in a.rate or ["new=150", "new=500", "repeat=500", "get=500"])]
    work = Path(tempfile.mkdtemp(prefix="qaflow-api-bench-"))
    kafka, pg, redis = KafkaServer(work / "kafka"), PostgresServer(work / "pg"), RedisServer(work / "redis")
    rows: list[dict[str, Any]] = []
    try:
        for server in (kafka, pg, redis):
            server.start()
        assert pg.pid is not None
        apis: list[tuple[str, subprocess.Popen[bytes], str, list[str], str]] = []
        try:
            for n, config in enumerate(a.config):
                run = f"{os.getpid()}-{n}"
                store_url = pg.create_database(f"bench_{n}")
                env = {"QAFLOW_BUS_URL": f"kafka://{kafka.bootstrap}", "QAFLOW_STORE_URL": store_url,
                       "QAFLOW_CACHE_URL": redis.url, "QAFLOW_TOPIC_PREFIX": f"bench{run}."}
                api, url = start_api(config, env, work / f"api-{n}.log")
                apis.append((config, api, url, seed(store_url, redis.url, run), run))
            for round_ in range(a.rounds):
                for scenario, rate in rates:
                    for config, api, url, known, run in apis:
                        count = rate * a.duration
                        titles = ([f"new question {i} at {rate}/s [{run}.{round_}]" for i in range(count)]
                                  if scenario == "new" else [known[i % KNOWN] for i in range(count)])
                        tfile = work / f"{scenario}-{rate}.jsonl"
                        targets(tfile, url, titles, "GET" if scenario == "get" else "POST")
                        time.sleep(3)
                        cpu_api, cpu_pg, load0 = cpu_s(api.pid), cpu_s(pg.pid), os.getloadavg()[0]
                        result = attack(tfile, rate, a.duration)
                        row = {"config": config, "round": round_, "scenario": scenario, "target_rate": rate, **result,
                               "api_cpu_s": round(cpu_s(api.pid) - cpu_api, 1),
                               "pg_cpu_s": round(cpu_s(pg.pid) - cpu_pg, 1),
                               "load_1m": [round(load0, 2), round(os.getloadavg()[0], 2)]}
                        rows.append(row)
                        print(json.dumps(row), flush=True)
        finally:
            for _, api, *_ in apis:
                api.send_signal(signal.SIGTERM)
            for _, api, *_ in apis:
                api.wait(30)
    finally:
        for server in (redis, pg, kafka):
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(rows, indent=1) + "\n")
    print("\n| config | scenario | rate/s | ok | errors | p50 ms | p95 ms | p99 ms | api CPU s | PG CPU s | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ok = sum(v for k, v in r["status_codes"].items() if k.startswith("2"))
        print(f"| {r['config']} | {r['scenario']} | {r['target_rate']} | {ok} | {r['requests'] - ok} | "
              f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['api_cpu_s']} | {r['pg_cpu_s']} | "
              f"{r['load_1m'][0]}-{r['load_1m'][1]} |")


if __name__ == "__main__":
    main()
