"""The dashboard, on SQLite and on a real PostgreSQL (their SQL differs in one place: floor)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from qaflow.core.ids import question_id
from qaflow.core.messages import (
    CallRecord,
    DeadLetter,
    Origin,
    QuestionMessage,
    ResultMessage,
    ScoreRecord,
    Status,
)
from qaflow.core.settings import ApiSettings, DashboardSettings
from qaflow.services.dashboard.app import create_app
from qaflow.services.dashboard.figures import latency_summary, minute_series, percentile, score_bins
from qaflow.services.web.app import runtime
from qaflow.store import open_store
from qaflow.store.base import Store, WriteBatch


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'qa.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    s.start()
    yield s
    s.close()


@pytest.fixture
def make_app(store_url: str) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        app = create_app(DashboardSettings(store_url=store_url, **overrides))
        apps.append(app)
        return app

    yield make
    for app in apps:
        runtime(app).close()


def result(i: int, status: Status, score: float | None, generations: int, latency_s: float, ago_s: float,
           delivery: int = 1, truncated: bool = False) -> ResultMessage:
    now = time.time()
    title = f"dashboard question {i}"
    fields: dict[str, Any] = {"answer": "an answer", "score": score, "best_generation": generations}
    if status is Status.FAILED:
        fields = {"error": "permanent LLM error", "score": score, "answer": "an answer" if score else None}
    return ResultMessage(question_id=question_id(title), status=status, title=title, generations=generations,
                         delivery=delivery, submitted_at=now - ago_s - latency_s, finished_at=now - ago_s,
                         truncated=truncated, **fields)


def ledger(results: list[ResultMessage]) -> list[CallRecord]:
    """One answered call per generation, each priced $0.001. Question 2's generation 3 met two 429s
    first; question 1's first generation met a 503, which its result (delivery of the last call) cannot show."""
    calls = []
    for i, r in enumerate(results):
        for g in range(1, r.generations + 1):
            tries = {(2, 3): 3, (1, 1): 2}.get((i, g), 1)
            for d in range(1, tries + 1):
                ok = d == tries
                calls.append(CallRecord(
                    question_id=r.question_id, generation=g, delivery=d, provider="openai", model="m",
                    status="ok" if ok else ("quota" if i == 2 else "overload"), latency_ms=100.0,
                    prompt_tokens=10 if ok else None,
                    completion_tokens=20 if ok else None, retry_wait_s=None if ok else 0.5,
                    cost_usd=0.001 if ok else None, started_at=r.submitted_at + g + d / 10))
    return calls


def test_an_empty_store_is_an_empty_page(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    page = client.get("/")
    assert page.status_code == 200 and page.content_type.startswith("text/html")
    html = page.get_data(as_text=True)
    assert "<svg" in html and "api/summary" in html
    assert not re.search(r"""(src|href)=["']https?://""", html), "no external assets"
    s = client.get("/api/summary").get_json()
    assert s["totals"] == {"questions": 0, "pending": 0, "validated": 0, "exhausted": 0, "failed": 0,
                           "dead_letters": 0, "truncated": 0}
    assert s["mean_score"] is None and s["latency_s"]["p50"] is None
    assert sum(b["count"] for b in s["scores"]) == 0
    assert len(s["throughput"]["per_minute"]) == 60 and s["throughput"]["last_5_min_per_minute"] == 0
    assert s["loop"] == {"scored_answers": 0, "llm_calls": 0, "first_calls": 0, "regeneration_calls": 0,
                         "retry_calls": 0, "errors": {}, "retry_wait_s": 0.0}
    assert s["cost"] == {"usd": None, "first": None, "regeneration": None, "retry": None, "per_question": None}
    assert set(s["cost_text"].values()) == {None}
    assert re.search(r'data-k="cost_text.usd"[^>]*>\u2013<', html), "no price: a dash, not $0"
    assert s["cache"]["hit_rate"] is None
    assert client.get("/readyz").status_code == 200


def test_figures_from_data(store: Store, make_app: Callable[..., Flask]) -> None:
    results = [
        result(0, Status.VALIDATED, 0.91, 1, latency_s=2.0, ago_s=30),
        result(1, Status.VALIDATED, 0.83, 2, latency_s=4.0, ago_s=90),
        result(2, Status.EXHAUSTED, 0.42, 3, latency_s=10.0, ago_s=150, delivery=3, truncated=True),
        result(3, Status.FAILED, None, 0, latency_s=1.0, ago_s=3 * 3600),  # outside the window
        result(4, Status.VALIDATED, 1.0, 1, latency_s=1.0, ago_s=45),
    ]
    attempts = [ScoreRecord(question_id=r.question_id, generation=g, answer="a", score=0.5, model="m",
                            scorer={"name": "x"}, decision="regenerate")
                for r in results for g in range(1, r.generations + 1)]
    for i in range(7):
        store.record_question(QuestionMessage.new(f"dashboard question {i}", "", "ref"))
    calls = ledger(results)
    store.write(WriteBatch(results=results, attempts=attempts, calls=calls, dead_letters=[
        DeadLetter(reason="bad record", stage="llm", origin=Origin(topic="qa.questions", partition=0, offset=7))]))
    store.write(WriteBatch(calls=calls[:3]))  # redelivered call records are not counted twice

    client = make_app().test_client()
    s = client.get("/api/summary").get_json()
    assert s["totals"] == {"questions": 7, "pending": 2, "validated": 3, "exhausted": 1, "failed": 1,
                           "dead_letters": 1, "truncated": 1}
    assert s["mean_score"] == pytest.approx((0.91 + 0.83 + 0.42 + 1.0) / 4, abs=1e-4)
    assert sum(p["results"] for p in s["throughput"]["per_minute"]) == 4
    assert s["throughput"]["last_5_min_per_minute"] == pytest.approx(4 / 5)
    assert s["latency_s"]["count"] == 4
    assert s["latency_s"]["p50"] == pytest.approx(2.0, abs=0.01)
    assert s["latency_s"]["max"] == pytest.approx(10.0, abs=0.01)
    bins = {b["lo"]: b["count"] for b in s["scores"] if b["count"]}
    assert bins == {0.4: 1, 0.8: 1, 0.9: 1, 0.95: 1}  # 1.0 lands in the last bin
    assert s["attempts"]["generations"] == {"0": 1, "1": 2, "2": 1, "3": 1}
    # Calls come from the ledger: exact, every retry counted (sum(delivery - 1) over results says 2).
    assert s["loop"] == {"scored_answers": 7, "llm_calls": 10, "first_calls": 4, "regeneration_calls": 3,
                         "retry_calls": 3, "errors": {"overload": 1, "quota": 2}, "retry_wait_s": 1.5}
    assert s["cost"] == pytest.approx({"usd": 0.007, "first": 0.003, "regeneration": 0.002, "retry": 0.002,
                                       "per_question": 0.007 / 4})
    page = client.get("/").get_data(as_text=True)
    assert re.search(r'data-k="totals.validated"[^>]*>3<', page), "figures are rendered on the server too"
    assert re.search(r'data-k="totals.truncated"[^>]*>1<', page), "truncated answers are shown"
    assert s["cost_text"] == {"usd": "$0.007", "first": "$0.003", "regeneration": "$0.002", "retry": "$0.002",
                              "per_question": "$0.00175", "per_1k_questions": "$1.75"}
    assert re.search(r'data-k="cost_text.usd"[^>]*>\$0\.007<', page), "the cost is shown, in the money format"
    assert re.search(r'data-k="cost_text.retry"[^>]*>\$0\.002<', page), "so is the cost of retries"
    assert re.search(r'data-k="cost_text.per_question"[^>]*>\$0\.00175<', page), "not rounded to $0.0018"
    assert re.search(r'data-k="cost_text.per_1k_questions"[^>]*>\$1\.75<', page)


def test_the_summary_is_memoised_briefly(store: Store, make_app: Callable[..., Flask]) -> None:
    client = make_app(dashboard_refresh_s=60).test_client()
    first = client.get("/api/summary").get_json()
    store.write(WriteBatch(results=[result(9, Status.VALIDATED, 0.9, 1, 1.0, 1.0)]))
    assert client.get("/api/summary").get_json() == first  # within memo_s (2 s)


@pytest.fixture
def api_url(tmp_path: Path, unique_name: str) -> Iterator[str]:
    from qaflow.services.api.app import create_app as create_api

    api = create_api(ApiSettings(bus_url=f"memory://{unique_name}", store_url=f"sqlite:///{tmp_path / 'api.db'}",
                                 cache_url="memory://"))
    server = make_server("127.0.0.1", 0, api, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = api.test_client()
    body = {"title": f"cached? [{unique_name}]", "reference_answer": "ref"}
    client.post("/v1/questions", json=body)
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()
    runtime(api).close()


def test_cache_hit_rate_comes_from_the_api(make_app: Callable[..., Flask], api_url: str) -> None:
    cache = make_app(dashboard_api_url=api_url).test_client().get("/api/summary").get_json()["cache"]
    assert cache["source"] == api_url.rstrip("/") + "/v1/stats"
    assert cache["misses"] >= 1 and 0 <= cache["hit_rate"] <= 1
    assert set(cache["answered_from"]) == {"cache", "store", "queued", "in-flight"}


def test_an_unreachable_api_leaves_the_hit_rate_out(make_app: Callable[..., Flask]) -> None:
    client = make_app(dashboard_api_url="http://127.0.0.1:1").test_client()
    cache = client.get("/api/summary").get_json()["cache"]
    assert cache["hit_rate"] is None and cache["error"]
    assert client.get("/").status_code == 200


def test_an_unreachable_store_is_not_ready_and_json(tmp_path: Path) -> None:
    app = create_app(DashboardSettings(store_url="postgresql://qaflow@127.0.0.1:1/nothing?connect_timeout=2"))
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503
    r = client.get("/api/summary")
    assert r.status_code == 503 and r.content_type == "application/problem+json"
    assert client.get("/metrics").status_code == 200


# --- The pure figures ---


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([1.0], 99) == 1.0
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 90), percentile(values, 99)) == (50.0, 90.0, 99.0)
    assert latency_summary([3.0, -1.0, 1.0]) == {"count": 3, "p50": 1.0, "p90": 3.0, "p99": 3.0, "max": 3.0}


def test_minute_series_and_score_bins() -> None:
    series = minute_series({100: 3, 98: 1, 10: 7}, now_s=100 * 60 + 5, minutes=3)
    assert series == [{"t": 98 * 60, "results": 1}, {"t": 99 * 60, "results": 0}, {"t": 100 * 60, "results": 3}]
    bins = score_bins({-3: 1, 0: 2, 19: 1, 20: 4})
    assert len(bins) == 20 and bins[0]["count"] == 3 and bins[19]["count"] == 5
