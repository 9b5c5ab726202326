"""`qaflow dev` cannot be fooled by another stack on the same machine.

A foreign HTTP server that answers 200 to everything stands for the other stack's service:
readiness, `up` and `status` must judge our processes by their pid and their own port, and
`restart` must bring a server back on its port and its data.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from qaflow.devstack import DevStack
from qaflow.devstack.catalog import FAKE_LLM, SERVICES, ServiceProcess, base_environment
from qaflow.devstack.owners import listener_pids, owns_port
from qaflow.devstack.ports import free_port, is_listening
from qaflow.devstack.stack import judge
from tests.pg import pg_rows

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]


class _AlwaysOk(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class Foreign:
    """Another stack's server on ``port``: answers 200 to every GET, in a thread of this process."""

    def __init__(self, port: int) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _AlwaysOk)
        self.port = port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def foreign() -> Iterator[Callable[[int], Foreign]]:
    made: list[Foreign] = []

    def make(port: int) -> Foreign:
        deadline = time.monotonic() + 10
        while True:
            try:
                f = Foreign(port)
            except OSError:  # the port is still being released
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
                continue
            made.append(f)
            return f

    yield make
    for f in made:
        f.close()


def test_readiness_is_not_taken_from_another_process_on_the_port(
    tmp_path: Path, foreign: Callable[[int], Foreign]
) -> None:
    """The fake LLM cannot bind a port a foreign server holds; that server's 200 must not count."""
    other = foreign(free_port())
    assert os.getpid() in listener_pids(other.port)
    proc = ServiceProcess(FAKE_LLM, base_environment(), tmp_path / "fake.log", port=other.port,
                          extra_args=("--port", str(other.port))).start()
    try:
        with pytest.raises(RuntimeError, match=r"exited|not ours"):
            proc.wait_ready(20)
    finally:
        proc.stop(grace_s=5)


def test_launch_moves_to_a_free_port_when_its_port_is_taken(tmp_path: Path, foreign: Callable[[int], Foreign]) -> None:
    from qaflow.devstack.services import launch

    other = foreign(free_port())
    proc = launch(FAKE_LLM.name, base_environment(), ["--port", str(other.port)], tmp_path / "fake.log", other.port,
                  ready_s=20)
    try:
        assert proc.port != other.port
        assert owns_port(proc.pid, proc.port) and not owns_port(proc.pid, other.port)
    finally:
        proc.stop(grace_s=5)


def test_status_judges_by_pid_and_own_port(foreign: Callable[[int], Foreign]) -> None:
    """A live process that does not hold its port is not running; neither is a dead one whose
    port someone else answers on; a live one on its own port is."""
    other = foreign(free_port())
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        from qaflow.devstack.pids import start_time

        info = {"pid": sleeper.pid, "start_time": start_time(sleeper.pid), "port": other.port}
        verdict = judge(info)
        assert verdict["running"] is False and str(os.getpid()) in verdict["why"]
        sleeper.kill()
        sleeper.wait()
        verdict = judge(info)
        assert verdict["running"] is False and "exited" in verdict["why"]
    finally:
        sleeper.kill()
        sleeper.wait()
    assert judge({"pid": os.getpid(), "port": other.port}) == {"running": True}


def _qaflow(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    cmd = [str(Path(sys.executable).parent / "qaflow"), "dev", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def test_two_stacks_status_and_restart(
    tmp_path: Path, foreign: Callable[[int], Foreign], require_servers: Callable[[DevStack], None]
) -> None:
    """The api's default port is held by a foreign server: `up --services` puts the api elsewhere.
    The api killed and its port taken by a foreign server: `status` says so (exit 1). `restart`
    brings the api back, and Kafka and PostgreSQL on their ports with their data."""
    state_dir = tmp_path / "stack"
    require_servers(DevStack(state_dir))
    api_default = SERVICES["api"].port
    if not is_listening(api_default):
        foreign(api_default)
    up = ["up", "--services", "--llm", "offline", "--scorer", "lexical", "--json", "--state-dir", str(state_dir)]
    try:
        done = _qaflow(*up)
        assert done.returncode == 0, done.stdout + done.stderr
        state = json.loads(done.stdout)
        api = state["services"]["api"]
        assert api["port"] != api_default and api["running"]
        assert _qaflow("status", "--state-dir", str(state_dir)).returncode == 0

        # The api dies; someone else takes its port.
        os.kill(api["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while listener_pids(api["port"]) and time.monotonic() < deadline:  # gunicorn workers leave
            time.sleep(0.2)
        foreign(api["port"])
        done = _qaflow("status", "--json", "--state-dir", str(state_dir))
        assert done.returncode == 1
        seen = json.loads(done.stdout)["services"]["api"]
        assert seen["running"] is False, seen

        done = _qaflow("restart", "api", "--json", "--state-dir", str(state_dir))
        assert done.returncode == 0, done.stdout + done.stderr
        back = json.loads(done.stdout)["api"]
        assert back["running"] and back["port"] != api["port"] and owns_port(back["pid"], back["port"])

        # Kafka and PostgreSQL come back on their ports, with their data.
        addresses = state["addresses"]
        admin = KafkaAdminClient(bootstrap_servers=addresses["kafka_bootstrap"], request_timeout_ms=10000)
        try:
            admin.create_topics([NewTopic("kept_across_restart", num_partitions=1, replication_factor=1)])
        finally:
            admin.close()
        conn = psycopg2.connect(addresses["postgres_url"])
        try:
            with conn, conn.cursor() as cur:
                cur.execute("CREATE TABLE kept_across_restart (n int)")
        finally:
            conn.close()
        old = state["servers"]
        for name in ("kafka", "postgres", "redis"):
            done = _qaflow("restart", name, "--json", "--state-dir", str(state_dir))
            assert done.returncode == 0, done.stdout + done.stderr
            new = json.loads(done.stdout)[name]
            assert new["running"] and new["port"] == old[name]["port"] and new["pid"] != old[name]["pid"]
        admin = KafkaAdminClient(bootstrap_servers=addresses["kafka_bootstrap"], request_timeout_ms=10000)
        try:
            assert "kept_across_restart" in admin.list_topics()
        finally:
            admin.close()
        assert pg_rows(addresses["postgres_url"], "SELECT to_regclass('kept_across_restart') IS NOT NULL") == [(True,)]
        done = _qaflow("status", "--json", "--state-dir", str(state_dir))
        assert done.returncode == 0, done.stdout
    finally:
        _qaflow("down", "--state-dir", str(state_dir), timeout=120)
