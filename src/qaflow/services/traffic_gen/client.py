"""Sending questions through the api and polling their status: one HTTP session per thread
(:class:`qaflow.plumbing.sessions.SessionPool`)."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import requests
from prometheus_client import Counter, Histogram

from qaflow.core.question import Question
from qaflow.plumbing.sessions import SessionPool
from qaflow.services.traffic_gen.report import TERMINAL, Report

logger = logging.getLogger(__name__)

REQUESTS = Counter("qaflow_traffic_requests_total", "Questions sent, by HTTP status (or error).", ["code"])
LATENCY = Histogram(
    "qaflow_traffic_request_seconds",
    "Latency of POST /v1/questions.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class ApiClient:
    def __init__(self, api_url: str, *, timeout_s: float = 30.0, api_key: str | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.headers = {"X-API-Key": api_key} if api_key else {}
        self.timeout_s = timeout_s
        self._sessions = SessionPool(headers=self.headers)

    def _session(self) -> requests.Session:
        return self._sessions.session()

    def submit(self, q: Question, run_id: str) -> tuple[str, float | None, dict[str, Any], float | None]:
        """(status code or ``error:<kind>``, latency in ms, the JSON reply or {}, Retry-After in s)."""
        body: dict[str, Any] = {"title": q.title, "content": q.content, "reference_answer": q.reference_answer,
                                "run_id": run_id}
        if q.category is not None:
            body["category"] = q.category
        started = time.perf_counter()
        try:
            response = self._session().post(f"{self.api_url}/v1/questions", json=body, timeout=self.timeout_s)
        except requests.RequestException as exc:
            REQUESTS.labels(f"error:{type(exc).__name__}").inc()
            return f"error:{type(exc).__name__}", None, {}, None
        latency = time.perf_counter() - started
        LATENCY.observe(latency)
        REQUESTS.labels(str(response.status_code)).inc()
        try:
            data = response.json()
        except ValueError:
            data = {}
        try:
            retry_after: float | None = float(response.headers.get("Retry-After", ""))
        except ValueError:
            retry_after = None
        return str(response.status_code), latency * 1000.0, data if isinstance(data, dict) else {}, retry_after

    def status(self, qid: str) -> str | None:
        try:
            response = self._session().get(f"{self.api_url}/v1/questions/{qid}", timeout=self.timeout_s)
        except requests.RequestException as exc:
            logger.debug("status of %s: %s", qid, exc)
            return None
        if response.status_code != 200:
            return None
        try:
            status = response.json().get("status")
        except (ValueError, AttributeError):
            return None
        return status if isinstance(status, str) else None

    def close(self) -> None:
        self._sessions.close()


RETRY_CODES = frozenset({"429", "502", "503", "504"})
RETRY_AFTER_CAP_S = 5.0


def send(client: ApiClient, report: Report, q: Question, run_id: str, repeat: bool, late: bool,
         retries: int = 3, stop: threading.Event | None = None) -> None:
    """Submit one question; retry 429, 502-504 and lost connections up to ``retries`` times
    (after Retry-After, capped, else 0.5 s doubling), as a careful client would."""
    for attempt in range(retries + 1):
        code, latency_ms, data, retry_after = client.submit(q, run_id)
        report.attempt(code, latency_ms)
        if attempt == retries or not (code in RETRY_CODES or code.startswith("error:")):
            break
        delay = min(RETRY_AFTER_CAP_S, retry_after if retry_after is not None else 0.5 * 2**attempt)
        if stop is not None and stop.wait(delay):
            break
        if stop is None:
            time.sleep(delay)
    named = data.get("id")
    qid = named if isinstance(named, str) else q.id
    if qid != q.id:
        logger.warning("the api named question %s %s; ids differ between client and api", q.id, qid)
    status = data.get("status") if isinstance(data.get("status"), str) else None
    source = data.get("source") if isinstance(data.get("source"), str) else None
    report.record(code, qid, status, source, repeat, late)


def poll_until_terminal(
    client: ApiClient, report: Report, pool: ThreadPoolExecutor, wait_s: float, stop: threading.Event,
    interval_s: float = 1.0,
) -> float:
    """Poll every question not yet terminal until all are, or ``wait_s`` passes. Returns the time taken."""
    started = time.monotonic()
    deadline = started + wait_s
    while not stop.is_set():
        pending = report.pending()
        if not pending or time.monotonic() >= deadline:
            break

        def check(qid: str) -> None:
            status = client.status(qid)
            if status is not None:
                report.update_status(qid, status)

        wait([pool.submit(check, qid) for qid in pending])
        if all(s in TERMINAL for s in (report.status.get(q) for q in pending)):
            break
        stop.wait(min(interval_s, max(0.0, deadline - time.monotonic())))
    return time.monotonic() - started
