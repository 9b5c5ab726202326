"""``qaflow run`` against servers that are not there: the pre-flight check (one line, exit 2,
before anything is stored), the failure reasons in the summary, and exit code 1 when every
question failed. Real sockets on 127.0.0.1: a closed port, an HTTP server, a silent listener."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from qaflow.core.errors import UnreachableError
from qaflow.plumbing.reach import check_reachable
from tests.integration.test_embedded_run import SAMPLE, qaflow


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server() -> Iterator[str]:
    class NotFound(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_closed_port_is_unreachable_with_the_reason_and_the_hint() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(UnreachableError) as caught:
        check_reachable("the ollama LLM", url, timeout_s=2, hint="start it")
    assert str(caught.value) == f"cannot reach the ollama LLM at {url}: connection refused; start it"
    assert caught.value.retriable


def test_any_http_answer_counts_as_reachable(http_server: str) -> None:
    check_reachable("x", http_server, timeout_s=2)  # a 404 still means a server listens


def test_a_listener_that_never_answers_counts_as_reachable() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.monotonic()
        check_reachable("x", f"http://127.0.0.1:{silent.getsockname()[1]}", timeout_s=0.3)
        assert time.monotonic() - started < 5


def test_an_unknown_host_says_so() -> None:
    with pytest.raises(UnreachableError, match="unknown host"):
        check_reachable("x", "http://no-such-host.invalid:11434", timeout_s=2)


def results(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])


def test_run_stops_before_starting_when_the_llm_server_is_down(tmp_path: Path) -> None:
    db, url = tmp_path / "q.db", f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    proc = qaflow("run", "--llm", "ollama", "--scorer", "lexical", "--limit", "5", "--store", f"sqlite:///{db}",
                  env={"QAFLOW_LLM_BASE_URL": url})
    assert proc.returncode == 2, proc.stderr
    assert time.monotonic() - started < 30  # no retries: the check fails at once
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "answering" not in ln]
    assert len(lines) == 1, proc.stderr
    assert f"cannot reach the ollama LLM at {url}: connection refused" in lines[0]
    assert "ollama serve" in lines[0] and "--llm" in lines[0] and "--no-server-check" in lines[0]
    assert "Traceback" not in proc.stderr and results(db) == 0


def test_a_remote_scorer_that_is_down_is_checked_too(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    proc = qaflow("run", "--scorer", "remote", "--limit", "2", "--store", f"sqlite:///{tmp_path / 'q.db'}",
                  env={"QAFLOW_SCORER_URL": url})
    assert proc.returncode == 2 and f"cannot reach the scorer service at {url}: connection refused" in proc.stderr


def test_the_offline_simulator_needs_no_check_and_a_live_server_passes(tmp_path: Path, http_server: str) -> None:
    """The check only looks: a server that answers lets the run go on (here every call then fails,
    the server being no LLM, so the run ends with exit 1 and the reason)."""
    db = tmp_path / "q.db"
    env = {"QAFLOW_LLM_BASE_URL": http_server, "QAFLOW_MAX_DELIVERY_ATTEMPTS": "1"}
    proc = qaflow("run", "--llm", "ollama", "--scorer", "lexical", "--limit", "3", "--json", "--store",
                  f"sqlite:///{db}", env=env)
    assert "cannot reach" not in proc.stderr and proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["failed"] == 3


def test_every_question_failed_exits_1_with_the_top_reasons(tmp_path: Path) -> None:
    db, url = tmp_path / "q.db", f"http://127.0.0.1:{closed_port()}"
    env = {"QAFLOW_LLM_BASE_URL": url, "QAFLOW_MAX_DELIVERY_ATTEMPTS": "2", "QAFLOW_RETRY_OVERLOAD_BASE_S": "0.01",
           "QAFLOW_RETRY_OVERLOAD_CAP_S": "0.02"}
    args = ("run", "--llm", "ollama", "--scorer", "lexical", "--limit", "4", "--store", f"sqlite:///{db}",
            "--no-server-check")
    proc = qaflow(*args, "--json", env=env)
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["failed"] == 4 and out["validated"] + out["exhausted"] == 0
    [top] = out["failure_reasons"]
    assert top["questions"] == 4 and f"connection to {url}/api/chat failed (connection refused)" in top["reason"]
    assert "no question was answered: 4 of 4 failed; most common reason: gave up after 2 deliveries" in proc.stderr

    table = qaflow(*args, env=env)  # again: answered from the store, where they are failed
    assert table.returncode == 1
    assert "failure reasons" in table.stdout and "4  gave up after 2 deliveries" in table.stdout
    assert "4 came from the store" in table.stderr
    assert f"qaflow trace --list --store sqlite:///{db}" in table.stderr


def test_permanent_errors_of_the_offline_simulator_fail_every_question_exit_1(tmp_path: Path) -> None:
    proc = qaflow("run", "--scorer", "lexical", "--limit", "3", "--json", "--store", f"sqlite:///{tmp_path / 'q.db'}",
                  env={"QAFLOW_LLM_SIM_RATE_MALFORMED": "1"})
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["failure_reasons"][0]["questions"] == 3


def test_a_run_that_answers_exits_0_and_lists_no_failure_reasons(tmp_path: Path) -> None:
    proc = qaflow("run", "--dataset", str(SAMPLE), "--scorer", "lexical", "--limit", "5", "--json", "--store",
                  f"sqlite:///{tmp_path / 'q.db'}")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["failure_reasons"] == []


def test_help_documents_the_exit_codes_and_the_check() -> None:
    out = qaflow("run", "--help").stdout
    assert "Exit codes:" in out and "--no-server-check" in out
    for code in ("0  the run finished", "1  the run finished but every question failed", "2  the run could not"):
        assert code in out
