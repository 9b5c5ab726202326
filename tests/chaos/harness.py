"""The chaos suite's stack and scenario runner.

One stack for the whole suite, brought up by the developer tooling itself: ``qaflow dev up
--services`` (real Kafka, PostgreSQL and Redis, every service as a process) against a fake
LLM this harness owns, so the faulty-LLM scenario can restart it with other knobs on the
same port. Faults go through ``qaflow dev restart`` and plain signals to the recorded pids.

Each scenario sends its own questions (synthetic, titles tagged with the scenario and a
nonce, so their ids are new and nothing comes from the cache) through the api with
traffic-gen, injects its fault while they are in flight, then waits for every accepted
question to be terminal in PostgreSQL, up to a deadline. It measures:

- accepted: questions the api answered 200/202 at least once (traffic-gen's ids file);
- terminal: accepted questions with a row in ``results`` by the deadline;
- lost: accepted and not terminal by the deadline;
- duplicated: accepted questions with more than one terminal record on ``qa.results`` and
  the dead-letter topic together (an answer counted twice);
- drain: seconds from the first question sent to the last accepted one terminal;
- alive: every server and service running (by pid and own port, ``qaflow dev status``) with
  the pid it had before the scenario, except a service the scenario itself killed and
  restarted (a supervisor's job); ``restarted by hand`` lists what the harness had to restart
  afterwards to heal the stack for the next scenario.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import requests

from qaflow.core import topics
from qaflow.datasets.synth import synth_questions
from qaflow.datasets.zhang import write_zhang_csv
from qaflow.devstack.catalog import FAKE_LLM, SERVICES, Backends, ServiceProcess, base_environment, environment
from qaflow.devstack.ports import free_port
from tests.e2e.test_services_e2e import pg_rows, read_topic

# The fake LLM: fast and clean, or faulty as issue 10 measured it (10% 429, 10% 503, 10% that
# answer only after 30 s, cut at 5 s by QAFLOW_LLM_TIMEOUT_S below).
CLEAN_LLM = ("--latency-ms", "20")
FAULTY_LLM = (*CLEAN_LLM, "--rate-429", "0.10", "--rate-503", "0.10", "--rate-timeout", "0.10",
              "--timeout-sleep-s", "30", "--retry-after-s", "1", "--seed", "7")
STACK_CONFIG = {
    "QAFLOW_SHUTDOWN_GRACE_S": "10",
    "QAFLOW_LLM_TIMEOUT_S": "5",
    "QAFLOW_LLM_CONNECT_TIMEOUT_S": "2",
    "QAFLOW_LLM_CONCURRENCY": "8",
    "QAFLOW_THRESHOLD": "0.15",  # about half the fake answers pass at once; the rest regenerate
    "QAFLOW_MAX_GENERATIONS": "2",
    "QAFLOW_MAX_DELIVERY_ATTEMPTS": "8",
    "QAFLOW_RETRY_AFTER_CAP_S": "1",
    "QAFLOW_RETRY_QUOTA_DELAY_S": "0.3",
    "QAFLOW_RETRY_OVERLOAD_BASE_S": "0.1",
    "QAFLOW_RETRY_OVERLOAD_CAP_S": "0.5",
    "QAFLOW_SCORER_BATCH_SIZE": "32",
    # QAFLOW_KAFKA_CLIENT of the test run reaches the stack: the suite on confluent-kafka
    **{k: v for k, v in os.environ.items() if k == "QAFLOW_KAFKA_CLIENT"},
}
SERVERS = ("kafka", "postgres", "redis")


def qaflow_dev(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``qaflow dev ARGS`` (the real command line) and return what it did."""
    cmd = [str(Path(sys.executable).parent / "qaflow"), "dev", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


class ChaosStack:
    """The suite's stack: `qaflow dev up --services` under ``root``, and our own fake LLM."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fake_port = free_port()
        self.fake: ServiceProcess | None = None
        self.state: dict[str, Any] = {}

    # -- the fake LLM -----------------------------------------------------------------------
    def start_fake(self, knobs: tuple[str, ...]) -> None:
        if self.fake is not None:
            self.fake.stop(grace_s=5)
        self.fake = ServiceProcess(FAKE_LLM, base_environment(), self.root / "logs" / "fake-llm.log",
                                   port=self.fake_port, extra_args=("--port", str(self.fake_port), *knobs)).start()
        self.fake.wait_ready(30)

    def fake_stats(self) -> dict[str, Any]:
        assert self.fake is not None
        stats: dict[str, Any] = requests.get(self.fake.url + "/_stats", timeout=5).json()
        return stats

    # -- the stack --------------------------------------------------------------------------
    def up(self) -> None:
        self.start_fake(CLEAN_LLM)
        env = [arg for k, v in STACK_CONFIG.items() for arg in ("-e", f"{k}={v}")]
        done = qaflow_dev("up", "--services", "--llm", f"http://127.0.0.1:{self.fake_port}", "--scorer", "lexical",
                          *env, "--json", "--state-dir", str(self.root / "stack"))
        if done.returncode != 0:
            msg = f"qaflow dev up failed:\n{done.stdout}\n{done.stderr}"
            raise RuntimeError(msg)
        self.state = json.loads(done.stdout)

    def down(self) -> None:
        qaflow_dev("down", "--state-dir", str(self.root / "stack"), timeout=180)
        if self.fake is not None:
            self.fake.stop(grace_s=5)

    def status(self) -> dict[str, dict[str, Any]]:
        """Every server and service: pid, port, running (``qaflow dev status --json``)."""
        done = qaflow_dev("status", "--json", "--state-dir", str(self.root / "stack"), timeout=60)
        state = json.loads(done.stdout)
        return {**state.get("servers", {}), **state.get("services", {})}

    def restart(self, name: str, down_s: float = 0.0) -> dict[str, Any]:
        """``qaflow dev restart NAME --down-s S``; the new state of ``name``."""
        done = qaflow_dev("restart", name, "--down-s", str(down_s), "--json", "--state-dir", str(self.root / "stack"))
        if done.returncode != 0:
            msg = f"qaflow dev restart {name} failed:\n{done.stdout}\n{done.stderr}"
            raise RuntimeError(msg)
        info: dict[str, Any] = json.loads(done.stdout)[name]
        return info

    def kill(self, name: str) -> None:
        os.kill(int(self.status()[name]["pid"]), signal.SIGKILL)

    @property
    def services(self) -> list[str]:
        return list(self.state["services"])

    @property
    def api_url(self) -> str:
        return str(self.status()["api"]["url"])

    @property
    def pg_url(self) -> str:
        return str(self.state["addresses"]["postgres_url"])

    @property
    def bootstrap(self) -> str:
        return str(self.state["addresses"]["kafka_bootstrap"])

    def log_tails(self, lines: int = 30) -> str:
        out = []
        for path in sorted((self.root / "stack" / "logs").glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append("\n".join(f"  {path.stem} | {line}" for line in text))
        return "\n".join(out)


# A fault or a probe that runs beside a scenario until its drain ends: (stack, the row's notes, stop).
Background = Callable[[ChaosStack, list[str], threading.Event], None]


@dataclass
class Row:
    """One line of the reliability table."""

    scenario: str
    questions: int
    accepted: int = 0
    terminal: int = 0
    lost: int = 0
    duplicated: int = 0
    drain_s: float | None = None
    post_p99_ms: float | None = None
    alive: str = ""
    all_alive: bool = False
    restarted_by_hand: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.accepted > 0 and self.lost == 0 and self.duplicated == 0 and self.all_alive and not any(
            n.startswith("FAIL") for n in self.notes)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


@dataclass(frozen=True)
class Scenario:
    """A fault: ``inject(stack, notes)`` runs ``at_s`` seconds after the first question is sent."""

    name: str
    inject: Callable[[ChaosStack, list[str]], None]
    at_s: float = 2.0
    questions: int = 60
    rate: float = 12.0
    drain_deadline_s: float = 75.0  # after the fault is over
    killed: str | None = None  # a service the scenario kills and restarts itself
    llm: tuple[str, ...] = CLEAN_LLM  # the fake LLM's knobs during the scenario
    during: Background | None = None  # runs until the drain ends


def write_questions(path: Path, scenario: str, n: int, nonce: str) -> None:
    seed = sum(map(ord, scenario))
    questions = [replace(q, title=f"[chaos {scenario} {nonce}] {q.title}") for q in synth_questions(n, seed)]
    # Question.id is derived at construction; replace() builds new ones from the tagged titles.
    write_zhang_csv(questions, path)


def send(stack: ChaosStack, scenario: Scenario, workdir: Path, run_id: str) -> ServiceProcess:
    nonce = uuid.uuid4().hex[:6]
    dataset = workdir / f"{scenario.name}.csv"
    write_questions(dataset, scenario.name, scenario.questions, nonce)
    spec = SERVICES["traffic-gen"]
    env = environment(spec, Backends("", "", ""), port=free_port(), config={
        "QAFLOW_LOG_FORMAT": "text",
        "QAFLOW_TRAFFIC_API_URL": stack.api_url,
        "QAFLOW_TRAFFIC_DATASET": str(dataset),
        "QAFLOW_TRAFFIC_RATE": str(scenario.rate),
        "QAFLOW_TRAFFIC_DISTRIBUTION": "uniform",
        "QAFLOW_TRAFFIC_SEED": "1",
        "QAFLOW_RUN_ID": run_id,
    })
    # Short timeouts and a few retries: a careful client that gives up on a stuck api.
    args = ("--json", "--ids-file", str(workdir / f"{scenario.name}.ids"), "--timeout-s", "5", "--retries", "4")
    return ServiceProcess(spec, env, workdir / f"{scenario.name}.traffic.log", extra_args=args).start()


def run(stack: ChaosStack, scenario: Scenario, workdir: Path) -> Row:
    """Run ``scenario`` on ``stack`` and measure it; heal the stack afterwards."""
    row = Row(scenario.name, scenario.questions)
    before = stack.status()
    run_id = f"chaos-{scenario.name}-{uuid.uuid4().hex[:6]}"
    if scenario.llm != CLEAN_LLM:
        stack.start_fake(scenario.llm)
    t0_wall = time.time()
    traffic = send(stack, scenario, workdir, run_id)
    stop_during = threading.Event()
    during = None
    if scenario.during is not None:
        during = threading.Thread(target=_guarded, args=(scenario.during, stack, row.notes, stop_during),
                                  daemon=True)
        during.start()
    try:
        time.sleep(scenario.at_s)
        scenario.inject(stack, row.notes)
        code, out = traffic.output(timeout_s=180)
        if code != 0:
            row.notes.append(f"FAIL traffic-gen exited {code}: {traffic.tail(5)}")
        summary = json.loads(out) if out.strip().startswith("{") else {}
        row.post_p99_ms = (summary.get("latency_ms") or {}).get("p99")
        ids_file = workdir / f"{scenario.name}.ids"
        accepted = set(ids_file.read_text().split()) if ids_file.is_file() else set()
        row.accepted = len(accepted)
        finished = _drain(stack, accepted, scenario.drain_deadline_s)
    finally:
        stop_during.set()
        if during is not None:
            during.join(30)
        traffic.stop(grace_s=5)
        if scenario.llm != CLEAN_LLM:
            stats = stack.fake_stats()
            faults = stats.get("faults", {})
            verdict = "LLM" if all(faults.get(k) for k in ("429", "503", "timeout")) else "FAIL not every fault: LLM"
            row.notes.append(f"{verdict} calls {stats.get('total')}, faults {faults}")
            stack.start_fake(CLEAN_LLM)
    row.terminal = len(finished)
    row.lost = len(accepted - set(finished))
    if finished and len(finished) == len(accepted):
        row.drain_s = round(max(finished.values()) - t0_wall, 1)
    row.duplicated = _duplicated(stack, accepted)
    _judge_alive(stack, scenario, before, row)
    return row


def _guarded(during: Background, stack: ChaosStack,
             notes: list[str], stop: threading.Event) -> None:
    """Run a scenario's background fault; if it breaks, the row says FAIL (never a silent pass)."""
    try:
        during(stack, notes, stop)
    except Exception as exc:  # reported in the row, which then fails
        notes.append(f"FAIL background fault broke: {exc!r}")


def _drain(stack: ChaosStack, accepted: set[str], deadline_s: float) -> dict[str, float]:
    """Wait until every accepted question has a result row; their ``finished_at`` (epoch s)."""
    deadline = time.monotonic() + deadline_s
    finished: dict[str, float] = {}
    while True:
        try:
            rows = pg_rows(stack.pg_url, "SELECT question_id, finished_at FROM results WHERE question_id = ANY(%s)",
                           (list(accepted),))
            finished = {qid: float(at) for qid, at in rows}
        except Exception:  # PostgreSQL may be the thing that is down
            pass
        if len(finished) == len(accepted) or time.monotonic() > deadline:
            return finished
        time.sleep(0.5)


def _duplicated(stack: ChaosStack, accepted: set[str]) -> int:
    """Accepted questions with more than one terminal record on qa.results and the dead-letter topic."""
    ends = Counter(k for k, _ in read_topic(stack.bootstrap, topics.RESULTS) if k in accepted)
    ends += Counter(v["question_id"] for _, v in read_topic(stack.bootstrap, topics.DEAD_LETTER)
                    if v.get("question") and v.get("question_id") in accepted)
    return sum(1 for n in ends.values() if n > 1)


def _judge_alive(stack: ChaosStack, scenario: Scenario, before: dict[str, dict[str, Any]], row: Row) -> None:
    after = stack.status()
    bad = []
    for name, info in after.items():
        same = info.get("pid") == before.get(name, {}).get("pid")
        if not info.get("running"):
            bad.append(f"{name} dead")
        elif not same and name != scenario.killed and name not in SERVERS:
            bad.append(f"{name} restarted")
    row.all_alive = not bad
    total = len(after)
    row.alive = f"{total - len(bad)}/{total}" + (f" ({', '.join(bad)})" if bad else "")
    for name, info in after.items():  # heal for the next scenario, and say so
        if not info.get("running"):
            row.restarted_by_hand.append(name)
            stack.restart(name)


# -- faults ----------------------------------------------------------------------------------
def sigkill(service: str) -> Callable[[ChaosStack, list[str]], None]:
    def inject(stack: ChaosStack, notes: list[str]) -> None:
        stack.kill(service)
        time.sleep(1.0)
        stack.restart(service)  # what a supervisor (Kubernetes) does
        notes.append(f"{service} SIGKILLed and restarted by the scenario")

    return inject


def outage(server: str, down_s: float) -> Callable[[ChaosStack, list[str]], None]:
    def inject(stack: ChaosStack, notes: list[str]) -> None:
        started = time.monotonic()
        info = stack.restart(server, down_s=down_s)
        notes.append(f"{server} stopped in {info.get('stopped_in_s')} s, down {down_s:g} s, started in "
                     f"{info.get('started_in_s')} s: back after {time.monotonic() - started:.0f} s")

    return inject


def faulty_llm(stack: ChaosStack, notes: list[str]) -> None:
    del stack, notes  # the fault is set before the scenario (the fake LLM restarted with faults)


def slow_clients(count: int, min_hold_s: float = 20.0) -> Background:
    """``count`` connections that send a partial request line and then nothing, held until the drain
    ends (at least ``min_hold_s``), while a well-behaved client probes /healthz every second (2 s
    timeout). A connection the server closes is opened again at once, as an attacker would."""

    def partial(port: int) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /v1/st")
        s.setblocking(False)
        return s

    def closed_by_server(s: socket.socket) -> bool:
        try:
            s.recv(4096)  # b"" (closed) or a reply (400, 408): either way the server ended it
        except BlockingIOError:
            return False
        except OSError:
            return True
        return True

    def during(stack: ChaosStack, notes: list[str], stop: threading.Event) -> None:
        url = stack.api_url
        port = int(url.rsplit(":", 1)[1])
        socks = [partial(port) for _ in range(count)]
        probes = failed = reopened = 0
        worst = 0.0
        until = time.monotonic() + min_hold_s
        try:
            while not (stop.is_set() and time.monotonic() > until):
                time.sleep(1.0)
                for i, s in enumerate(socks):
                    if closed_by_server(s):
                        s.close()
                        reopened += 1
                        socks[i] = partial(port)
                probes += 1
                t = time.monotonic()
                try:
                    ok = requests.get(url + "/healthz", timeout=2).status_code == 200
                except requests.RequestException:
                    ok = False
                worst = max(worst, time.monotonic() - t)
                failed += not ok
        finally:
            for s in socks:
                s.close()
        verdict = "FAIL" if failed else "ok"
        notes.append(f"{verdict} /healthz with {count} slow clients: {failed} of {probes} probes failed, "
                     f"slowest {worst:.1f} s; the server closed {reopened} partial connections (reopened)")

    return during


def probe_api(path: str = "/readyz", min_hold_s: float = 20.0) -> Background:
    """A client asking ``path`` every second (2 s timeout) until the drain ends (at least ``min_hold_s``).

    Any reply counts (200, or 503 while a backend is down: docs/api.md); no reply fails the row.
    """

    def during(stack: ChaosStack, notes: list[str], stop: threading.Event) -> None:
        url = stack.api_url + path
        probes = failed = 0
        codes: Counter[str] = Counter()
        worst = 0.0
        until = time.monotonic() + min_hold_s
        while not (stop.is_set() and time.monotonic() > until):
            time.sleep(1.0)
            probes += 1
            t = time.monotonic()
            try:
                codes[str(requests.get(url, timeout=2).status_code)] += 1
            except requests.RequestException as exc:
                codes[type(exc).__name__] += 1
                failed += 1
            worst = max(worst, time.monotonic() - t)
        verdict = "FAIL" if failed else "ok"
        notes.append(f"{verdict} {path} answered {probes - failed} of {probes} probes {dict(codes)}, "
                     f"slowest {worst:.1f} s")

    return during
