"""API latency at a fixed open-loop rate (issue 13): POST new, POST repeat, GET, over HTTP only.

The api and the pipeline behind it (llm-worker with the offline simulator at 0 ms, retry-worker,
score-worker with the lexical scorer, storage-writer) run as processes started the way
``qaflow dev up --services`` starts them, on the given Kafka, PostgreSQL and Redis, so the
pipeline consumes while the api is loaded. First a warm-up (``warmup_s`` of new POSTs at
``rate``, other questions, recorded as ``warm-up`` but not a target's figure), then a wait for
the pipeline and the servers to go quiet: on a freshly started broker the JVM compiles Kafka's
hot paths during the first thousands of requests (measured: Kafka 9.1 s of CPU in 20 s of new
POSTs on a fresh broker, 2.8-3.5 s on a warm one, and the api's p99 1,060 ms against 57-83 ms),
so a cold first phase measures the JIT, not qaflow; a JVM benchmark warms up first (JMH's
warm-up iterations). Then three phases, each at ``rate`` requests/s (:mod:`openloop`):

1. ``post-new``: ``rate x duration_s`` distinct questions, each POSTed once (202 expected);
2. ``post-repeat``: once the pipeline has answered them (or ``settle_s`` has passed), the same
   questions again (200 from the cache expected; a 202 means still in flight);
3. ``get``: ``GET /v1/questions/<id>`` of those questions.

Beside ``post-new``: the CPU seconds each process spent during it (``cpu_s``: the api, each
pipeline service, Kafka, PostgreSQL, Redis, and this load generator), and the load average.
``nice`` > 0 runs the pipeline services (not the api, not the servers) at that lower CPU
priority, modelling a deployment that gives the api its own CPU; figures taken so are labelled
``nice_pipeline`` and must be reported beside the un-niced ones, never instead of them.

    .venv/bin/python bench/api_latency.py --kafka 127.0.0.1:9092 --postgres postgresql://... --redis redis://...
    # its own servers; "before" (another source tree) and "after" alternately, twice, post-new only:
    .venv/bin/python bench/api_latency.py --servers --phases post-new --compare before=/tmp/old/src --rounds 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import openloop
import proctree


def questions(n: int, seed: int) -> list[dict[str, Any]]:
    from qaflow.datasets.synth import synth_questions

    tag = f"bench {time.time_ns()}"  # new questions every run: the store may hold earlier ones
    return [{"title": f"{q.title} ({tag} #{i})", "content": q.content, "reference_answer": q.reference_answer}
            for i, q in enumerate(synth_questions(n, seed))]


def wait_answered(api: str, ids: list[str], settle_s: float) -> dict[str, Any]:
    """Poll a sample of ``ids`` until all are terminal or ``settle_s`` passes."""
    sample = ids[:: max(1, len(ids) // 20)] + ids[-1:]
    began = time.monotonic()
    pending = set(sample)
    while pending and time.monotonic() - began < settle_s:
        for qid in list(pending):
            try:
                r = requests.get(f"{api}/v1/questions/{qid}", timeout=10)
            except requests.RequestException:  # an api still digging out of the load: ask again later
                break
            if r.ok and r.json().get("status") in ("validated", "exhausted", "failed"):
                pending.discard(qid)
        if pending:
            time.sleep(1)
    return {"settled_s": round(time.monotonic() - began, 1), "sample": len(sample), "still_pending": len(pending)}


CLK_TCK = os.sysconf("SC_CLK_TCK")
PHASES = ("post-new", "post-repeat", "get")
LOADGEN = "load generator"


def cpu_s(pids: Sequence[int], descendants: bool = True) -> float:
    """CPU seconds (user + system) of ``pids`` (and their live descendants), from /proc/<pid>/stat."""
    total = 0.0
    for root in pids:
        for pid in proctree.tree(root) if descendants else [root]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def measured(groups: dict[str, list[int]], phase: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``phase()``'s result, with the 1-minute load average before and after it (``load_1m``) and the
    CPU seconds each group of processes spent meanwhile (``cpu_s``)."""
    before, load0 = {name: cpu_s(pids, name != LOADGEN) for name, pids in groups.items()}, os.getloadavg()
    out = phase()
    out["load_1m"] = [round(load0[0], 2), round(os.getloadavg()[0], 2)]
    out["cpu_s"] = {name: round(cpu_s(pids, name != LOADGEN) - before[name], 2) for name, pids in groups.items()}
    return out


def wait_quiet(pids: Sequence[int], below_cores: float = 0.25, every_s: float = 1.0,
               max_s: float = 60.0) -> dict[str, Any]:
    """Wait until ``pids`` (with their descendants) use less than ``below_cores`` of CPU over ``every_s``
    twice in a row, or ``max_s`` passes: the cache-hit phases measure the api, not a pipeline still
    draining the new POSTs or a PostgreSQL still vacuuming after them."""
    began = time.monotonic()
    last, calm = cpu_s(pids), 0
    while calm < 2 and time.monotonic() - began < max_s:
        time.sleep(every_s)
        now = cpu_s(pids)
        calm = calm + 1 if (now - last) / every_s < below_cores else 0
        last = now
    return {"waited_s": round(time.monotonic() - began, 1), "quiet": calm >= 2}


def renice(pids: Sequence[int], nice: int) -> None:
    """Lower the CPU priority of every thread of ``pids`` and their descendants (Linux's nice is per thread),
    and of their autogroups: with ``kernel.sched_autogroup_enabled`` (1 here) the scheduler first shares
    the CPU between sessions, each service being a session of its own, so a thread's nice alone only
    ranks it within its session (sched(7), "The autogroup feature")."""
    for root in pids:
        with contextlib.suppress(OSError):  # no autogroups (kernel option off or not built)
            Path(f"/proc/{root}/autogroup").write_text(str(nice))
        for pid in proctree.tree(root):
            for task in Path(f"/proc/{pid}/task").glob("*"):
                try:
                    os.setpriority(os.PRIO_PROCESS, int(task.name), nice)
                except (OSError, ValueError):
                    continue


def niceness(pids: Sequence[int]) -> list[int]:
    """The distinct nice values of every thread of ``pids`` and their descendants (checks :func:`renice`)."""
    values = set()
    for root in pids:
        for pid in proctree.tree(root):
            for task in Path(f"/proc/{pid}/task").glob("*"):
                try:
                    values.add(int((task / "stat").read_text().rsplit(")", 1)[1].split()[16]))
                except (OSError, IndexError, ValueError):
                    continue
    return sorted(values)


class Probes:
    """While a phase runs: one Kafka send awaited for its acknowledgement (acks=all, as the api's),
    one PostgreSQL ``SELECT 1`` on a kept connection and one Redis ``PING``, every ``every_s``,
    from a thread of this process; their latencies say which dependency a slow api waits on."""

    def __init__(self, urls: dict[str, str], every_s: float = 0.1) -> None:
        import threading

        self.urls = urls
        self.every_s = every_s
        self.ms: dict[str, list[float]] = {"kafka": [], "postgresql": [], "redis": []}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probes", daemon=True)

    def __enter__(self) -> Probes:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        import psycopg2
        import redis
        from kafka import KafkaProducer

        from qaflow.bus.kafka import KafkaBus
        from qaflow.core.topics import TopicSpec

        KafkaBus(f"kafka://{self.urls['kafka_bootstrap']}").ensure_topics([TopicSpec("bench-probe", 1, 600_000)])
        producer = KafkaProducer(bootstrap_servers=self.urls["kafka_bootstrap"], acks="all", linger_ms=0)
        producer.send("bench-probe", b"warm").get(timeout=30)
        pg = psycopg2.connect(self.urls["postgres_url"])
        pg.autocommit = True
        rd = redis.Redis.from_url(self.urls["redis_url"])
        calls = {"kafka": lambda: producer.send("bench-probe", b"x").get(timeout=30),
                 "postgresql": lambda: pg.cursor().execute("SELECT 1"), "redis": rd.ping}
        try:
            while not self._stop.wait(self.every_s):
                for name, call in calls.items():
                    began = time.perf_counter()
                    call()
                    self.ms[name].append(1000 * (time.perf_counter() - began))
        finally:
            producer.close()
            pg.close()
            rd.close()

    def summary(self) -> dict[str, dict[str, float | None]]:
        return {name: {"n": len(v), "p50_ms": openloop._round(openloop.percentile(v, 50)),
                       "p99_ms": openloop._round(openloop.percentile(v, 99)),
                       "max_ms": openloop._round(max(v) if v else None)} for name, v in self.ms.items()}


def autogroup(pid: int) -> str | None:
    """``/proc/<pid>/autogroup`` ("/autogroup-N nice K"), None where there is none."""
    try:
        return Path(f"/proc/{pid}/autogroup").read_text().strip()
    except OSError:
        return None


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def processes(urls: dict[str, str], running: dict[str, Any]) -> dict[str, list[int]]:
    """The pids to account CPU to, by name: each service, the three servers, this load generator."""
    from qaflow.devstack.owners import listener_pids

    groups = {name: [int(info["pid"])] for name, info in running.items()}
    for name, key in (("kafka", "kafka_bootstrap"), ("postgresql", "postgres_url"), ("redis", "redis_url")):
        address = urls[key].split("@")[-1].split("?")[0]
        groups[name] = sorted(listener_pids(_port(address)))
    groups[LOADGEN] = [os.getpid()]  # its children are the services: counted without them
    return groups


def run(urls: dict[str, str], *, rate: float, duration_s: float, repeat_s: float, get_s: float,
        settle_s: float = 120.0, warmup_s: float = 10.0, workdir: Path | None = None,
        phases: Sequence[str] = PHASES, nice: int = 0,
        log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True)) -> dict[str, Any]:
    """The phases against a freshly started api and pipeline; ``urls`` has kafka_bootstrap,
    postgres_url and redis_url (DevStack.addresses())."""
    from qaflow.cli.dev import start_services
    from qaflow.core.ids import question_id
    from qaflow.devstack import services as dev_services

    with tempfile.TemporaryDirectory(prefix="qaflow-bench-api-", dir=workdir, ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        log("starting the api and the pipeline services (offline LLM at 0 ms, lexical scorer)")
        # QAFLOW_KAFKA_CLIENT of this process reaches every service: one run per Kafka client
        client = {k: v for k, v in os.environ.items() if k == "QAFLOW_KAFKA_CLIENT"}
        running = start_services(root, urls, llm="offline", scorer="lexical",
                                 extra_env={"QAFLOW_LLM_SIM_LATENCY_MS": "0", "QAFLOW_LOG_LEVEL": "warning", **client})
        dev_services.save(root, running)
        try:
            api = running["api"]["url"].rstrip("/")
            qs = questions(max(1, int(rate * duration_s)), seed=3)
            posts = [openloop.Call("POST", f"{api}/v1/questions", q) for q in qs]
            requests.post(f"{api}/v1/questions", json=questions(1, seed=4)[0], timeout=60)  # warm the worker
            groups = processes(urls, running)
            if nice:
                renice([p for name, pids in groups.items() if name in running and name != "api" for p in pids], nice)
            out: dict[str, Any] = {"api": api, "rate": rate, "nice_pipeline": nice}
            busy = [p for name, pids in groups.items() if name not in ("api", LOADGEN) for p in pids]
            if warmup_s > 0:
                warm = [openloop.Call("POST", f"{api}/v1/questions", q)
                        for q in questions(max(1, int(rate * warmup_s)), seed=5)]
                log(f"warm-up: {len(warm)} POSTs at {rate:g}/s, then waiting for the pipeline and servers to go quiet")
                out["warm-up"] = measured(groups, lambda: openloop.run(warm, rate, expect=(202,)))
                out["warm-up"]["quiet"] = wait_quiet(busy)
            log(f"post-new: {len(posts)} POSTs at {rate:g}/s")
            with Probes(urls) as probes:
                out["post-new"] = measured(groups, lambda: openloop.run(posts, rate, expect=(202,)))
            out["post-new"]["probes"] = probes.summary()
            out["post-new"]["nice"] = {name: niceness(pids) for name, pids in groups.items() if name in running}
            out["post-new"]["autogroup"] = {name: autogroup(pids[0]) for name, pids in groups.items() if pids}
            if list(phases) == ["post-new"]:
                return out
            ids = [question_id(q["title"], q["content"]) for q in qs[:: max(1, len(qs) // 200)]]
            log(f"waiting up to {settle_s:g} s for the pipeline to answer them")
            out["settle"] = wait_answered(api, ids, settle_s)
            log("waiting for the pipeline and the servers to go quiet")
            out["settle"]["quiet"] = wait_quiet(busy)
            n_repeat = max(1, int(rate * repeat_s))
            repeats = [posts[i % len(posts)] for i in range(n_repeat)]
            log(f"post-repeat: {n_repeat} POSTs of answered questions at {rate:g}/s")
            out["post-repeat"] = measured(groups, lambda: openloop.run(repeats, rate, expect=(200,)))
            n_get = max(1, int(rate * get_s))
            gets = [openloop.Call("GET", f"{api}/v1/questions/{ids[i % len(ids)]}") for i in range(n_get)]
            log(f"get: {n_get} GETs at {rate:g}/s")
            out["get"] = measured(groups, lambda: openloop.run(gets, rate, expect=(200,)))
        finally:
            dev_services.stop(root)
    return out


def compare(urls: dict[str, str], trees: dict[str, str], rounds: int, args: list[str]) -> list[dict[str, Any]]:
    """Run this script once per source tree (``label -> src path``; "" = this checkout), alternately,
    ``rounds`` times, each on freshly started services, and return every run's figures."""
    rows = []
    for r in range(rounds):
        for label, src in trees.items():
            env = {**os.environ, "PYTHONPATH": src} if src else dict(os.environ)
            cmd = [sys.executable, __file__, "--kafka", urls["kafka_bootstrap"], "--postgres", urls["postgres_url"],
                   "--redis", urls["redis_url"], *args]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if done.returncode:
                rows.append({"label": label, "round": r, "error": done.stderr[-2000:]})
                continue
            rows.append({"label": label, "round": r, **json.loads(done.stdout)})
            new = rows[-1]["post-new"]
            print(f"{label} round {r}: ok {new['ok']} errors {new['errors']} p50 {new['p50_ms']} p95 {new['p95_ms']} "
                  f"p99 {new['p99_ms']} ms; load {new['load_1m']}; cpu {new['cpu_s']}", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kafka", help="host:port")
    p.add_argument("--postgres", help="postgresql://...")
    p.add_argument("--redis", help="redis://host:port/db")
    p.add_argument("--servers", action="store_true", help="start Kafka, PostgreSQL and Redis for this run")
    p.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES),
                   help="post-new alone, or all three (default)")
    p.add_argument("--nice", type=int, default=0, help="run the pipeline services at this nice level (default 0)")
    p.add_argument("--compare", action="append", default=[], metavar="LABEL=SRC",
                   help="also run with PYTHONPATH=SRC (another checkout's src), alternating with this one")
    p.add_argument("--rounds", type=int, default=1, help="alternations with --compare (default 1)")
    p.add_argument("--out", type=Path, help="write the JSON here too")
    p.add_argument("--rate", type=float, default=500.0, help="requests/s of every phase (default 500)")
    p.add_argument("--duration-s", type=float, default=30.0, help="length of post-new (default 30)")
    p.add_argument("--warmup-s", type=float, default=10.0,
                   help="new POSTs before post-new, not measured: warms a fresh broker's JVM (default 10; 0: none)")
    p.add_argument("--repeat-s", type=float, default=10.0, help="length of post-repeat (default 10)")
    p.add_argument("--get-s", type=float, default=10.0, help="length of get (default 10)")
    p.add_argument("--settle-s", type=float, default=120.0, help="longest wait for the answers (default 120)")
    a = p.parse_args(argv)
    stack = None
    if a.servers:
        from qaflow.devstack.stack import DevStack

        stack = DevStack(Path(tempfile.mkdtemp(prefix="qaflow-bench-servers-"))).start()
        urls = stack.addresses()
    elif a.kafka and a.postgres and a.redis:
        urls = {"kafka_bootstrap": a.kafka, "postgres_url": a.postgres, "redis_url": a.redis}
    else:
        p.error("give --kafka, --postgres and --redis, or --servers")
    try:
        if a.compare:
            trees = {"after": "", **dict(c.split("=", 1) for c in a.compare)}
            args = ["--rate", str(a.rate), "--duration-s", str(a.duration_s), "--repeat-s", str(a.repeat_s),
                    "--get-s", str(a.get_s), "--settle-s", str(a.settle_s), "--nice", str(a.nice),
                    "--warmup-s", str(a.warmup_s), "--phases", *a.phases]
            result: Any = compare(urls, trees, a.rounds, args)
        else:
            result = run(urls, rate=a.rate, duration_s=a.duration_s, repeat_s=a.repeat_s, get_s=a.get_s,
                         settle_s=a.settle_s, warmup_s=a.warmup_s, phases=a.phases, nice=a.nice)
    finally:
        if stack is not None:
            stack.stop()
    text = json.dumps(result, indent=2)
    if a.out:
        a.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
