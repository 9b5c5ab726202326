"""Pipeline throughput (issue 13, item 2): four setups side by side on the same questions.

Every setup answers the same ``--questions`` synthetic questions (``qaflow dataset synth``,
seed 0) with the zero-latency offline LLM simulator and the lexical scorer, each on its own
database, Redis database and topic prefix, so none answers from another's results:

1. ``embedded``: ``qaflow run`` in one process (memory bus, SQLite, memory cache); the rate
   is the run's own ``questions_per_s`` (submission to the last result).
2. ``backend``: the llm-worker, retry-worker, score-worker and storage-writer as processes
   (started from the service catalog as their containers start them) draining a backlog:
   the questions are on ``qa.questions`` before the workers start; the clock starts when
   every worker answers ``/readyz`` and stops when the last result is in PostgreSQL.
3. ``e2e``: the api and the same four workers; the questions are POSTed to the api by
   ``--clients`` threads as fast as it answers; first POST to the last result stored.
4. ``run-real``: ``qaflow run --bus kafka://... --store postgresql://... --cache redis://...``;
   its own ``questions_per_s``.
5. ``e2e-batch``: as ``e2e``, but the questions go to ``POST /v1/questions:batch`` in batches of
   ``--batch-size`` (100) by the same ``--clients`` threads (bulk ingestion, issue 13).

Beside each figure: the 1-minute load average before and after, the wall time, and the CPU
seconds each process (and Kafka, PostgreSQL, Redis) spent in the window, from
``/proc/<pid>/stat``. ``--profile DIR`` also records each service with py-spy (raw
collapsed stacks and the top functions, in DIR).

    .venv/bin/python bench/pipeline.py                      # all four, 2,000 questions
    .venv/bin/python bench/pipeline.py --only e2e --questions 500 --json
    .venv/bin/python bench/pipeline.py --only e2e e2e-batch e2e e2e-batch   # side by side, alternating

Other scripts call :func:`run` (it returns the result as a dict).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "pipeline.json"
SCENARIOS = ("embedded", "backend", "e2e", "e2e-batch", "run-real")
BATCH_SIZE = 100  # questions per POST /v1/questions:batch in e2e-batch
WORKERS = ("llm-worker", "retry-worker", "score-worker", "storage-writer")
CLK_TCK = os.sysconf("SC_CLK_TCK")
COMMON = {
    "QAFLOW_LLM_PROVIDER": "offline",
    "QAFLOW_LLM_SIM_LATENCY_MS": "0",
    "QAFLOW_SCORER": "lexical",
    "QAFLOW_LOG_FORMAT": "text",
    "QAFLOW_LOG_LEVEL": "warning",
}


# -- measuring -------------------------------------------------------------------------------
def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live children (gunicorn's workers), from /proc."""
    total = 0.0
    for p in [pid, *children(pid)]:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                for c in (task / "children").read_text().split():
                    out += [int(c), *children(int(c))]
    return out


class CpuMeter:
    """CPU seconds per named process tree between :meth:`start` and :meth:`stop`."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before: dict[str, float] = {}

    def start(self) -> None:
        self.before = {n: tree_cpu_s(p) for n, p in self.pids.items()}

    def stop(self) -> dict[str, float]:
        return {n: round(tree_cpu_s(p) - self.before.get(n, 0.0), 2) for n, p in self.pids.items()}


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


class Profiler:
    """py-spy on every given pid (with its children) for one scenario, when ``out_dir`` is set."""

    def __init__(self, out_dir: Path | None, scenario: str, *, idle: bool = False) -> None:
        self.out_dir = out_dir
        self.scenario = scenario
        self.idle = idle  # wall-clock profile (waiting threads too), per thread: shows where a loop waits
        self.procs: list[tuple[str, Path, subprocess.Popen[bytes]]] = []

    def start(self, pids: dict[str, int]) -> None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if self.out_dir is None or not Path(spy).exists():
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, pid in pids.items():
            raw = self.out_dir / f"{self.scenario}-{name}.txt"
            cmd = [spy, "record", "--pid", str(pid), "--subprocesses", "--format", "raw", "--rate", "50",
                   "--nonblocking", "--output", str(raw), *(("--idle", "--threads") if self.idle else ())]
            self.procs.append((name, raw, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))

    def stop(self) -> dict[str, list[tuple[str, float]]]:
        import signal

        tops: dict[str, list[tuple[str, float]]] = {}
        for _, _, proc in self.procs:
            proc.send_signal(signal.SIGINT)
        for name, raw, proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if raw.exists():
                tops[name] = top_functions(raw.read_text())
        self.procs = []
        return tops


def top_functions(collapsed: str, n: int = 8) -> list[tuple[str, float]]:
    """Share of samples whose stack holds each function (inclusive), from py-spy's raw format."""
    counts: dict[str, int] = {}
    total = 0
    for line in collapsed.splitlines():
        stack, _, num = line.rpartition(" ")
        if not num.isdigit():
            continue
        total += int(num)
        for frame in {f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
                      for f in stack.split(";")[1:]}:
            counts[frame] = counts.get(frame, 0) + int(num)
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    skip = ("<module>", "main (", "run (", "_bootstrap", "run_worker", "serve", "loop (")
    return [(f, round(c / total, 3)) for f, c in ranked if not f.startswith(skip)][:n] if total else []


# -- servers and data -----------------------------------------------------------------------
class Servers:
    """Kafka, PostgreSQL and Redis: the given ones, or private ones under ``root``."""

    def __init__(self, root: Path, stack: ExitStack, bootstrap: str | None, pg_url: str | None,
                 redis_url: str | None) -> None:
        from qaflow.devstack import KafkaServer, PostgresServer, RedisServer

        self.pids: dict[str, int] = {}
        self.pg: Any = None
        if bootstrap is None:
            kafka = KafkaServer(root / "kafka")
            kafka.start()
            stack.callback(kafka.stop)
            bootstrap = kafka.bootstrap
            self.pids["kafka"] = kafka.pid or 0
        if pg_url is None:
            self.pg = PostgresServer(root / "postgres")
            self.pg.start()
            stack.callback(self.pg.stop)
            self.pids["postgres"] = self.pg.pid or 0
        if redis_url is None:
            redis = RedisServer(root / "redis")
            redis.start()
            stack.callback(redis.stop)
            redis_url = redis.url
            self.pids["redis"] = redis.pid or 0
        self.bootstrap = bootstrap
        self.pg_url = pg_url
        self.redis_url = redis_url.rstrip("/").rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url
        self._redis_db = 0

    def database(self, name: str) -> str:
        if self.pg is not None:
            return str(self.pg.create_database(name))
        assert self.pg_url is not None
        return self.pg_url

    def cache(self) -> str:
        self._redis_db += 1
        return f"{self.redis_url.rstrip('/')}/{self._redis_db}"


def write_dataset(path: Path, n: int) -> list[dict[str, str]]:
    """``n`` synthetic questions (seed 0) as a Zhang CSV at ``path``; returns them for POSTing."""
    from qaflow.datasets.synth import synth_questions, write_zhang_csv

    questions = list(synth_questions(n, seed=0))
    write_zhang_csv(questions, path)
    return [{"title": q.title, "content": q.content, "reference_answer": q.reference_answer} for q in questions]


def count_results(store_url: str) -> int:
    import psycopg2

    with contextlib.closing(psycopg2.connect(store_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM results")
        row = cur.fetchone()
        return int(row[0]) if row else 0


def wait_results(store_url: str, n: int, max_s: float, on_tick: Callable[[], None] = lambda: None) -> float:
    """Poll until ``n`` results are stored; returns the monotonic time the last arrived (or the deadline)."""
    import psycopg2

    deadline = time.monotonic() + max_s
    with contextlib.closing(psycopg2.connect(store_url)) as conn:
        conn.autocommit = True
        while time.monotonic() < deadline:
            with conn.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM results")
                row = cur.fetchone()
            if row and row[0] >= n:
                return time.monotonic()
            on_tick()
            time.sleep(0.05)
    msg = f"only {count_results(store_url)} of {n} results after {max_s:.0f} s"
    raise TimeoutError(msg)


# -- scenarios ------------------------------------------------------------------------------
def qaflow_run(dataset: Path, env: dict[str, str], args: Sequence[str], servers: dict[str, int],
               profile: Profiler, timeout_s: float) -> dict[str, Any]:
    """``qaflow run --json``: its summary, wall time and CPU (the run and the servers)."""
    from qaflow.core.settings import for_service
    from qaflow.devstack.catalog import base_environment, executable

    cmd = [executable("qaflow"), "run", "--dataset", str(dataset), "--scorer", "lexical", "--llm", "offline",
           "--json", *args]
    meter = CpuMeter(servers)
    load0 = loadavg()
    meter.start()
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=for_service({**base_environment(), **env}, "embedded"),  # what `qaflow run` reads
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    profile.start({"qaflow-run": proc.pid})
    cpu_watch = {"qaflow-run": 0.0}

    def watch() -> None:  # the process's CPU just before it exits
        while proc.poll() is None:
            cpu_watch["qaflow-run"] = tree_cpu_s(proc.pid)
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()
    out, err = proc.communicate(timeout=timeout_s)
    wall = time.monotonic() - started
    tops = profile.stop()
    if proc.returncode != 0:
        msg = f"qaflow run failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}"
        raise RuntimeError(msg)
    summary = json.loads(out.decode().strip().splitlines()[-1])
    cpu = {**meter.stop(), **cpu_watch}
    return {
        "questions": summary["questions"],
        "questions_per_s": round(summary["questions_per_s"], 1),
        "elapsed_s": round(summary["elapsed_s"], 2),
        "process_wall_s": round(wall, 2),
        "validated": summary.get("validated"), "exhausted": summary.get("exhausted"), "failed": summary.get("failed"),
        "cpu_s": cpu, "load_before": load0, "load_after": loadavg(), "profile": tops,
    }


def start_services(names: Sequence[str], backends: Any, logs: Path, config: dict[str, str],
                   stack: ExitStack) -> dict[str, Any]:
    from qaflow.devstack.catalog import SERVICES, ServiceProcess, environment
    from qaflow.devstack.ports import free_port

    procs: dict[str, Any] = {}
    for name in names:
        spec = SERVICES[name]
        port = free_port()
        env = environment(spec, backends, port=port, config=config, multiproc_dir=logs / f"prom-{name}")
        proc = ServiceProcess(spec, env, logs / f"{name}.log", port=port)
        proc.start()
        stack.callback(proc.stop, 20)
        procs[name] = proc
    for proc in procs.values():
        proc.wait_ready(120)
    return procs


def enqueue_backlog(bootstrap: str, prefix: str, dataset: Path, partitions: int) -> int:
    from qaflow.bus import open_bus
    from qaflow.core import topics
    from qaflow.core.messages import QuestionMessage
    from qaflow.core.settings import BackendSettings
    from qaflow.datasets import open_dataset

    url = f"kafka://{bootstrap}"
    bus = open_bus(url, BackendSettings(bus_url=url, topic_prefix=prefix, kafka_partitions=partitions))
    bus.start()
    bus.ensure_topics(topics.default_specs(partitions))
    producer = bus.producer()
    producer.start()
    n = 0
    for q in open_dataset(str(dataset)):
        msg = QuestionMessage.new(q.title, q.content, q.reference_answer, category=q.category)
        producer.send(topics.QUESTIONS, msg.question_id, msg.encode())
        n += 1
    producer.flush()
    producer.close()
    bus.close()
    return n


def services_run(kind: str, servers: Servers, dataset: Path, questions: list[dict[str, str]], logs: Path,
                 a: argparse.Namespace, profile: Profiler) -> dict[str, Any]:
    """``backend`` (a backlog, drained by the workers), ``e2e`` (POSTed to the api) or ``e2e-batch``
    (POSTed to the api in batches)."""
    import requests

    from qaflow.devstack.catalog import Backends

    tag = f"{kind.replace('-', '_')}_{uuid.uuid4().hex[:6]}"
    store = servers.database(f"bench_{tag}")
    prefix = f"bench-{tag}."
    store_url = f"{store}?{a.store_query}" if a.store_query else store  # e.g. the api's pool sizes
    backends = Backends(f"kafka://{servers.bootstrap}", store_url, servers.cache(), prefix)
    config = {**COMMON, "QAFLOW_KAFKA_PARTITIONS": str(a.partitions),
              **{k: v for k, v in a.env.items() if k != "BENCH_CLIENT"}}
    client = a.env.get("BENCH_CLIENT", a.client)  # a variant may compare clients
    with ExitStack() as stack:
        if kind == "backend":
            enqueue_backlog(servers.bootstrap, prefix, dataset, a.partitions)
            names: Sequence[str] = WORKERS
        else:
            names = ("api", *WORKERS)
        procs = start_services(names, backends, logs / kind, config, stack)
        pids = {**servers.pids, **{n: p.pid for n, p in procs.items()}}
        meter = CpuMeter(pids)
        load0 = loadavg()
        meter.start()
        profile.start({n: p.pid for n, p in procs.items()})
        started = time.monotonic()
        post_s = None
        client_cpu0 = time.process_time()  # this process: the POSTing client's CPU (all its threads)
        if kind == "e2e":
            post = post_all_aiohttp if client == "aiohttp" else post_all
            post_s = post(procs["api"].url, questions, a.clients)
        elif kind == "e2e-batch":
            post_s = post_batches(procs["api"].url, questions, a.clients, a.batch_size)
        last = wait_results(store, len(questions), a.max_s)
        elapsed = last - started
        cpu = meter.stop()
        if kind != "backend":
            cpu["bench-client"] = round(time.process_time() - client_cpu0, 2)
        tops = profile.stop()
        status = stored_status(store)
        result = {
            "questions": len(questions), "questions_per_s": round(len(questions) / elapsed, 1),
            "elapsed_s": round(elapsed, 2), "post_s": None if post_s is None else round(post_s, 2),
            "client": client if kind == "e2e" else "requests" if kind == "e2e-batch" else None,
            "batch_size": a.batch_size if kind == "e2e-batch" else None,
            **status, "cpu_s": cpu, "load_before": load0, "load_after": loadavg(), "profile": tops,
        }
        _ = requests  # imported for post_all's sessions
        return result


def stored_status(store_url: str) -> dict[str, int]:
    import psycopg2

    with contextlib.closing(psycopg2.connect(store_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT status, COUNT(*) FROM results GROUP BY status")
        return {str(s): int(n) for s, n in cur.fetchall()}


def post_all(api_url: str, questions: list[dict[str, str]], clients: int) -> float:
    """POST every question with ``clients`` threads (one keep-alive session each); seconds taken."""
    return _post_each(f"{api_url}/v1/questions", questions, clients, (200, 202), timeout_s=30, what="POSTs")


def post_batches(api_url: str, questions: list[dict[str, str]], clients: int, size: int) -> float:
    """POST every question in batches of ``size`` to ``/v1/questions:batch`` with ``clients`` threads
    (one keep-alive session each); seconds taken. A batch answered other than 200 is sent again
    (its questions were released), at most 5 times."""
    batches = [{"questions": questions[i:i + size]} for i in range(0, len(questions), size)]
    return _post_each(f"{api_url}/v1/questions:batch", batches, clients, (200,), timeout_s=60, what="batch POSTs")


def _post_each(url: str, bodies: Sequence[Any], clients: int, ok: tuple[int, ...], *, timeout_s: float,
               what: str) -> float:
    """POST each JSON body to ``url`` from ``clients`` threads, sending one again (at most 5 tries, 0.2 s
    apart) while the answer is not in ``ok``; seconds taken. Raises RuntimeError naming the first failure."""
    import requests

    local = threading.local()
    errors: list[str] = []

    def post(body: Any) -> None:
        session = getattr(local, "s", None) or requests.Session()
        local.s = session
        for _ in range(5):
            r = session.post(url, json=body, timeout=timeout_s)
            if r.status_code in ok:
                return
            time.sleep(0.2)
        errors.append(f"{r.status_code} {r.text[:200]}")

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post, bodies))
    if errors:
        msg = f"{len(errors)} {what} failed; first: {errors[0]}"
        raise RuntimeError(msg)
    return time.monotonic() - started


def post_all_aiohttp(api_url: str, questions: list[dict[str, str]], clients: int) -> float:
    """POST every question from one asyncio loop with ``clients`` requests in flight (aiohttp,
    keep-alive); seconds taken. One thread: far less client CPU than ``clients`` threads of
    ``requests``, which competes with the pipeline for the same cores."""
    import asyncio

    import aiohttp

    errors: list[str] = []

    async def main() -> None:
        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
            todo = iter(questions)

            async def client() -> None:
                for q in todo:
                    for _ in range(5):
                        async with session.post(f"{api_url}/v1/questions", json=q) as r:
                            if r.status in (200, 202):
                                await r.read()
                                break
                            text = await r.text()
                        await asyncio.sleep(0.2)
                    else:
                        errors.append(f"{r.status} {text[:200]}")

            await asyncio.gather(*(client() for _ in range(clients)))

    started = time.monotonic()
    asyncio.run(main())
    if errors:
        msg = f"{len(errors)} POSTs failed; first: {errors[0]}"
        raise RuntimeError(msg)
    return time.monotonic() - started


def run_real(servers: Servers, dataset: Path, a: argparse.Namespace, profile: Profiler) -> dict[str, Any]:
    """``qaflow run`` over the real servers. A run that stalls (no progress for 180 s: twice under
    load, a consumer group assigned itself no partition of a just-created topic and never rejoined;
    see docs/performance.md) is run once more on fresh topics, and the result says so
    (``retried_after``: the stall's last line), so the table shows it rather than a failure."""
    try:
        return _run_real_once(servers, dataset, a, profile)
    except RuntimeError as exc:
        if "made no progress" not in str(exc):
            raise
        stall = str(exc).strip().splitlines()[-1]
        print(f"run-real stalled ({stall}); running it once more on fresh topics", file=sys.stderr)
        result = _run_real_once(servers, dataset, a, profile)
        result["retried_after"] = stall
        return result


def _run_real_once(servers: Servers, dataset: Path, a: argparse.Namespace, profile: Profiler) -> dict[str, Any]:
    tag = f"run_{uuid.uuid4().hex[:6]}"
    store = servers.database(f"bench_{tag}")
    env = {**COMMON, "QAFLOW_TOPIC_PREFIX": f"bench-{tag}.", "QAFLOW_KAFKA_PARTITIONS": str(a.partitions),
           **dict(a.env)}
    args = ["--bus", f"kafka://{servers.bootstrap}", "--store", store, "--cache", servers.cache()]
    result = qaflow_run(dataset, env, args, servers.pids, profile, a.max_s)
    result["stored"] = stored_status(store)
    return result


def embedded(dataset: Path, root: Path, a: argparse.Namespace, profile: Profiler) -> dict[str, Any]:
    db = root / f"embedded-{uuid.uuid4().hex[:6]}.db"
    env = {k: v for k, v in {**COMMON, **dict(a.env)}.items() if k != "QAFLOW_LOG_FORMAT"}
    return qaflow_run(dataset, env, ["--store", f"sqlite:///{db}", "--bus", "memory://", "--cache", "memory://"],
                      {}, profile, a.max_s)


# -- entry points ---------------------------------------------------------------------------
def run(questions: int = 2000, only: Sequence[str] = SCENARIOS, *, partitions: int = 3, clients: int = 16,
        bootstrap: str | None = None, pg_url: str | None = None, redis_url: str | None = None,
        profile_dir: Path | None = None, env: dict[str, str] | None = None, max_s: float = 600.0,
        store_query: str = "", client: str = "requests", variants: dict[str, dict[str, str]] | None = None,
        batch_size: int = BATCH_SIZE,
        log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True)) -> dict[str, Any]:
    """Runs the chosen scenarios in order on the same ``questions`` questions; returns figures and ratios.

    ``variants`` (name -> extra environment, e.g. ``{"before": {"PYTHONPATH": "/old/src"}, "after": {}}``)
    runs each scenario once per variant, back to back (side by side on the same servers and
    load), as ``scenario@variant``; ratios are taken within a variant.

    ``pg_url`` (an existing database) only suits one services scenario per call: the results
    of every scenario would land in it. Raises ``TimeoutError`` when a scenario does not finish
    within ``max_s``.
    """
    a = argparse.Namespace(partitions=partitions, clients=clients, env=env or {}, max_s=max_s,
                           store_query=store_query, client=client, batch_size=batch_size)
    base_env = dict(a.env)
    variants = variants or {"": {}}
    out: dict[str, Any] = {
        "questions": questions, "partitions": partitions, "clients": clients, "cpus": os.cpu_count(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "scenarios": {},
    }
    with tempfile.TemporaryDirectory(prefix="qaflow-bench-pipeline-", ignore_cleanup_errors=True) as tmp, \
            ExitStack() as stack:
        root = Path(tmp)
        dataset = root / "questions.csv"
        qs = write_dataset(dataset, questions)
        servers = None
        if any(s != "embedded" for s in only):
            servers = Servers(root, stack, bootstrap, pg_url, redis_url)
        for scenario in only:
            for vname, venv in variants.items():
                name = f"{scenario}@{vname}" if vname else scenario
                a.env = {**base_env, **venv}
                log(f"{name}: {questions} questions, load {loadavg()}")
                prof = Profiler(profile_dir, name.replace("@", "-"), idle=scenario in ("embedded", "run-real"))
                if scenario == "embedded":
                    res = embedded(dataset, root, a, prof)
                elif scenario == "run-real":
                    assert servers is not None
                    res = run_real(servers, dataset, a, prof)
                else:
                    assert servers is not None
                    res = services_run(scenario, servers, dataset, qs, root / "logs" / (vname or "-"), a, prof)
                res["variant"] = vname
                out["scenarios"][name] = res
                log(f"{name}: {res['questions_per_s']} q/s in {res['elapsed_s']} s, load {res['load_after']}")
    for res in out["scenarios"].values():  # CPU per question: steadier than rates on a shared machine
        res["cpu_ms_per_question"] = round(1000 * sum(res["cpu_s"].values()) / questions, 2)
    out["ratios"] = {}
    for vname in variants:
        mine = {k.split("@")[0]: v for k, v in out["scenarios"].items() if v.get("variant") == vname}
        out["ratios"].update({f"{k}@{vname}" if vname else k: r for k, r in ratios(mine).items()})
    return out


def ratios(sc: dict[str, Any]) -> dict[str, float]:
    rate = {k: v["questions_per_s"] for k, v in sc.items()}
    out = {}
    for k in ("backend", "e2e", "e2e-batch", "run-real"):
        if k in rate and rate.get("embedded"):
            out[f"{k}/embedded"] = round(rate[k] / rate["embedded"], 2)
    if "run-real" in rate and rate.get("e2e"):
        out["run-real/e2e"] = round(rate["run-real"] / rate["e2e"], 2)
    if "run-real" in rate and rate.get("backend"):
        out["run-real/backend"] = round(rate["run-real"] / rate["backend"], 2)
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = ["| setup | questions/s | elapsed s | ratio to embedded | load before → after | CPU ms/question "
             "| CPU s (top) |", "|---|---|---|---|---|---|---|"]
    sc = result["scenarios"]
    for name, r in sc.items():
        v = r.get("variant")
        base = sc.get(f"embedded@{v}" if v else "embedded", {}).get("questions_per_s")
        ratio = f"{r['questions_per_s'] / base:.2f}" if base else "-"
        cpu = ", ".join(f"{k} {v}" for k, v in sorted(r["cpu_s"].items(), key=lambda kv: -kv[1])[:6])
        lines.append(f"| {name} | {r['questions_per_s']} | {r['elapsed_s']} | {ratio} | "
                     f"{r['load_before']} → {r['load_after']} | {r.get('cpu_ms_per_question', '-')} | {cpu} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Writes " + str(RESULTS) + " (and .md) unless --output says otherwise.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--questions", type=int, default=2000, help="Questions per setup (default 2000)")
    p.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS), help="Setups to run, in order")
    p.add_argument("--partitions", type=int, default=3, help="QAFLOW_KAFKA_PARTITIONS (default 3)")
    p.add_argument("--clients", type=int, default=16, help="POSTing threads in e2e (default 16)")
    p.add_argument("--bootstrap", help="host:port of a Kafka broker (default: start one)")
    p.add_argument("--redis-url", help="redis://host:port (default: start one); databases 1, 2... are used")
    p.add_argument("--profile", type=Path, default=None, help="Record every process with py-spy into this directory")
    p.add_argument("--env", nargs="*", default=[], metavar="VAR=VALUE", help="Extra QAFLOW_* settings, every process")
    p.add_argument("--store-query", default="",
                   help="Query string added to the services' store URL, e.g. pool_min=8&pool_max=8 (the api's pool)")
    p.add_argument("--client", choices=("requests", "aiohttp"), default="requests",
                   help="e2e's POSTing client: --clients threads of requests, or one aiohttp loop, --clients in flight")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE,
                   help=f"Questions per POST /v1/questions:batch in e2e-batch (default {BATCH_SIZE})")
    p.add_argument("--variant", action="append", default=[], metavar="NAME[:VAR=VALUE,...]",
                   help="Run every setup once per variant, back to back, with these extra variables "
                        "(PYTHONPATH=<old tree>/src compares code); repeat the option")
    p.add_argument("--max-s", type=float, default=600.0, help="Give up a setup after this long (default 600)")
    p.add_argument("--output", type=Path, default=RESULTS, help="JSON result path ('-' for none)")
    p.add_argument("--json", action="store_true", help="Print the result as JSON instead of a table")
    a = p.parse_args(argv)
    env = dict(kv.split("=", 1) for kv in a.env)
    variants = {}
    for v in a.variant:
        vname, _, pairs = v.partition(":")
        variants[vname] = dict(kv.split("=", 1) for kv in pairs.split(",") if kv)
    result = run(a.questions, a.only, partitions=a.partitions, clients=a.clients, bootstrap=a.bootstrap,
                 redis_url=a.redis_url, profile_dir=a.profile, env=env, max_s=a.max_s, store_query=a.store_query,
                 client=a.client, variants=variants or None, batch_size=a.batch_size)
    if str(a.output) != "-":
        a.output.parent.mkdir(parents=True, exist_ok=True)
        a.output.write_text(json.dumps(result, indent=2) + "\n")
        a.output.with_suffix(".md").write_text(markdown(result) + "\n")
    print(json.dumps(result, indent=2) if a.json else markdown(result) + "\n" + json.dumps(result["ratios"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
