"""The three web services under real gunicorn, started exactly as their containers start them.

The api runs with 2 workers in prometheus multiprocess mode: /metrics must add up the
counters of both workers, and SIGTERM must stop everything cleanly. The scorer and the
dashboard get a shorter start/serve/stop run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from qaflow.core.messages import ResultMessage, Status
from qaflow.store import open_store
from qaflow.store.base import WriteBatch

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
REFERENCE = "Rayleigh scattering of sunlight by the air favours short, blue wavelengths."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Gunicorn:
    def __init__(self, service: str, env: dict[str, str], tmp_path: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_dir = tmp_path / f"prom-{service}"
        self.log = tmp_path / f"{service}.log"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("QAFLOW_", "PROMETHEUS_", "GUNICORN_"))}
        self.env = {**clean, **env, "QAFLOW_HTTP_PORT": str(self.port),
                    "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir)}
        self.args = [GUNICORN, "--config", f"python:qaflow.services.{service}.gunicorn_conf", *extra,
                     f"qaflow.services.{service}.app:create_app()"]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_path: str = "/healthz", timeout_s: float = 60) -> None:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"gunicorn exited: {self.log.read_text()[-3000:]}"
            try:
                if requests.get(self.url + ready_path, timeout=2).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or a worker still booting
                pass
            time.sleep(0.2)
        raise AssertionError(f"not ready in {timeout_s}s: {self.log.read_text()[-3000:]}")

    def stop(self, timeout_s: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def log_records(self) -> list[dict[str, Any]]:
        lines = [line for line in self.log.read_text().splitlines() if line.strip()]
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"not a JSON log line: {line!r}") from None
        return records


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[Gunicorn] = []

    def run(service: str, env: dict[str, str], *extra: str, ready_path: str = "/healthz") -> Gunicorn:
        g = Gunicorn(service, env, tmp_path, *extra)
        started.append(g)
        g.start(ready_path)
        return g

    yield run
    for g in started:
        g.kill()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{([^}}]*)\}})? (\S+)$", re.M)
    for found_labels, value in pattern.findall(text):
        if sorted(found_labels.split(",")) == sorted(want.split(",")) or (not want and not found_labels):
            return float(value)
    return 0.0


@pytest.fixture(params=["embedded", pytest.param("servers", marks=pytest.mark.integration)])
def api_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "embedded":
        return {"QAFLOW_BUS_URL": "memory://", "QAFLOW_STORE_URL": f"sqlite:///{tmp_path / 'qa.db'}",
                "QAFLOW_CACHE_URL": "memory://"}
    return {"QAFLOW_BUS_URL": f"kafka://{request.getfixturevalue('kafka_bootstrap')}",
            "QAFLOW_STORE_URL": request.getfixturevalue("pg_url"),
            "QAFLOW_CACHE_URL": request.getfixturevalue("redis_url")}


def test_api_under_gunicorn_aggregates_metrics_over_workers_and_stops_cleanly(
    serve: Any, api_env: dict[str, str], unique_name: str
) -> None:
    api = serve("api", api_env, "--workers", "2", ready_path="/readyz")
    for _ in range(100):  # both workers connected (a worker still connecting answers 503 with Retry-After)
        if all(requests.get(api.url + "/readyz", timeout=5).status_code == 200 for _ in range(10)):
            break
        time.sleep(0.2)
    # Fresh connections until both workers have answered (each reports its pid).
    pids: list[int] = []
    for _ in range(400):
        pids.append(requests.get(api.url + "/healthz", timeout=5).json()["pid"])
        if len(set(pids)) == 2 and len(pids) >= 20:
            break
    assert len(set(pids)) == 2, "only one worker ever answered"

    questions = [{"title": f"gunicorn question {i} [{unique_name}]", "reference_answer": REFERENCE} for i in range(6)]
    codes = [requests.post(api.url + "/v1/questions", json=q, timeout=30).status_code for q in questions]
    assert codes == [202] * 6
    again = requests.post(api.url + "/v1/questions", json=questions[0], timeout=30)
    assert again.status_code == 202 and again.json()["source"] == "in-flight"
    bad = requests.post(api.url + "/v1/questions", data=b"{", headers={"Content-Type": "application/json"}, timeout=5)
    assert bad.status_code == 400 and bad.headers["Content-Type"] == "application/problem+json"

    # Make every worker answer /readyz, then read the sums.
    text = requests.get(api.url + "/metrics", timeout=5).text
    healthz = metric(text, "qaflow_http_requests_total", endpoint="/healthz", method="GET", status="200")
    assert healthz >= len(pids)  # the start-up probe adds a few more
    assert metric(text, "qaflow_api_submissions_total", source="queued") == 6
    assert metric(text, "qaflow_api_submissions_total", source="in-flight") == 1
    assert metric(text, "qaflow_http_requests_total", endpoint="/v1/questions", method="POST", status="400") == 1
    assert metric(text, "qaflow_http_requests_in_flight") == 1  # this very request
    files = {p.name for p in api.metrics_dir.glob("*.db")}
    assert len({re.sub(r"\D", "", f) for f in files if f.startswith("counter")}) == 2, files

    stats = requests.get(api.url + "/v1/stats", timeout=10).json()
    assert stats["cache"]["submissions"]["queued"] == 6  # also summed over both workers
    assert stats["by_status"]["pending"] == 6

    assert api.stop() == 0
    records = api.log_records()  # JSON lines only, gunicorn's own included
    assert any(r.get("logger") == "gunicorn.error" and "Shutting down" in r.get("message", "") for r in records)
    assert not any("Traceback" in json.dumps(r) for r in records)


def test_scorer_under_gunicorn_loads_the_model_after_the_fork(serve: Any) -> None:
    scorer = serve("scorer", {"QAFLOW_SCORER": "lexical"}, ready_path="/readyz")
    info = requests.get(scorer.url + "/v1/info", timeout=5).json()
    assert info == {"scorer": {"name": "lexical", "metric": "token-f1", "version": "2", "tokens": "words+chars"}}
    reply = requests.post(scorer.url + "/v1/score", json={"pairs": [{"candidate": "a cat", "reference": "the cat"}]},
                          timeout=10)
    assert reply.json()["scores"] == [1.0]
    text = requests.get(scorer.url + "/metrics", timeout=5).text
    assert metric(text, "qaflow_scorer_pairs_total") == 1
    assert metric(text, "qaflow_scorer_model_load_seconds_count") == 1
    assert scorer.stop() == 0


def test_dashboard_under_gunicorn(serve: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dash.db'}"
    store = open_store(url)
    store.start()
    store.write(WriteBatch(results=[ResultMessage(
        question_id="0" * 31 + "1", status=Status.VALIDATED, title="t", answer="a", score=0.9, generations=1,
        submitted_at=time.time() - 2)]))
    store.close()
    dash = serve("dashboard", {"QAFLOW_STORE_URL": url}, ready_path="/readyz")
    page = requests.get(dash.url + "/", timeout=10)
    assert page.status_code == 200 and "qaflow" in page.text
    assert requests.get(dash.url + "/api/summary", timeout=10).json()["totals"]["validated"] == 1
    assert dash.stop() == 0
