"""The dashboard's data: the store, opened once per process, and a summary kept for a moment.

Several browser tabs polling at once cost one set of queries per ``memo_s``, not one each.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import requests

from qaflow.core.cost import format_usd
from qaflow.core.settings import DashboardSettings
from qaflow.services.dashboard.figures import SCORE_BINS, latency_summary, minute_series, score_bins
from qaflow.services.dashboard.queries import Queries
from qaflow.store import open_store
from qaflow.store.base import CallStats, Store
from qaflow.store.sql import SqlStore

logger = logging.getLogger(__name__)

WINDOW_MINUTES = 60
API_TIMEOUT_S = 2.0
TERMINAL = ("validated", "exhausted", "failed")


def _usd(value: float | None) -> float | None:
    return None if value is None else round(value, 8)


def cost_summary(calls: CallStats) -> dict[str, float | None]:
    """USD from the call ledger (None without a price): all, by kind of call, per question."""
    priced = calls.cost_usd is not None
    return {
        "usd": _usd(calls.cost_usd),
        "first": _usd(calls.cost_by_kind.get("first", 0.0) if priced else None),
        "regeneration": _usd(calls.cost_by_kind.get("regeneration", 0.0) if priced else None),
        "retry": _usd(calls.cost_by_kind.get("retry", 0.0) if priced else None),
        "per_question": _usd(calls.cost_per_question_usd),
    }


def cost_text(cost: dict[str, float | None]) -> dict[str, str | None]:
    """:func:`cost_summary`'s figures as the page shows them, in the one money format of qaflow
    (:func:`qaflow.core.cost.format_usd`, also RunSummary.cost_text's), so the page's script
    holds no copy of it; plus the cost of 1,000 questions at the mean cost per question."""
    out = {k: None if v is None else format_usd(v) for k, v in cost.items()}
    per_q = cost.get("per_question")
    out["per_1k_questions"] = None if per_q is None else format_usd(1000 * per_q)
    return out


class DashboardRuntime:
    def __init__(self, settings: DashboardSettings) -> None:
        self.settings = settings
        self.memo_s = min(2.0, settings.dashboard_refresh_s / 2)
        self._lock = threading.Lock()
        self._store: Store | None = None
        self._memo: tuple[float, dict[str, Any]] | None = None
        self._session: requests.Session | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    store = open_store(self.settings.store_url)
                    store.start()
                    self._store = store
        return self._store

    def summary(self) -> dict[str, Any]:
        now = time.time()
        memo = self._memo
        if memo is not None and now - memo[0] < self.memo_s:
            return memo[1]
        out = self._compute(now)
        self._memo = (now, out)
        return out

    def _compute(self, now: float) -> dict[str, Any]:
        store = self.store
        stats = store.stats()
        by_status = {k: int(stats.by_status.get(k, 0)) for k in TERMINAL}
        finished = sum(by_status.values())
        out: dict[str, Any] = {
            "generated_at": round(now, 3),
            "refresh_s": self.settings.dashboard_refresh_s,
            "window_minutes": WINDOW_MINUTES,
            "totals": {"questions": stats.questions, "pending": max(0, stats.questions - finished), **by_status,
                       "dead_letters": stats.dead_letters, "truncated": stats.truncated},
            "mean_score": None if stats.mean_score is None else round(stats.mean_score, 4),
            "attempts": {
                "generations": {str(k): v for k, v in sorted(stats.generations_distribution.items())},
                "mean_score_by_generation": {str(k): round(v, 4)
                                             for k, v in sorted(stats.mean_score_by_generation.items())},
            },
        }
        if isinstance(store, SqlStore):
            rows = Queries(store).rows(now, WINDOW_MINUTES, SCORE_BINS)
            out["throughput"] = {
                "per_minute": minute_series(rows.per_minute, now, WINDOW_MINUTES),
                "last_5_min_per_minute": round(rows.recent_results / 5, 2),
            }
            out["latency_s"] = latency_summary(rows.latencies_s)
            out["scores"] = score_bins(rows.score_bins)
            out["loop"] = {"scored_answers": rows.attempts}
        calls = store.call_stats()  # the call ledger: exact counts of every kind of call
        out.setdefault("loop", {}).update(
            llm_calls=calls.calls,
            first_calls=calls.by_kind.get("first", 0),
            regeneration_calls=calls.by_kind.get("regeneration", 0),
            retry_calls=calls.by_kind.get("retry", 0),
            errors={k: n for k, n in sorted(calls.by_status.items()) if k != "ok"},
            retry_wait_s=round(calls.retry_wait_s_total, 3),
        )
        out["cost"] = cost_summary(calls)
        out["cost_text"] = cost_text(out["cost"])
        out["cache"] = self._cache()
        return out

    def _cache(self) -> dict[str, Any]:
        """The cache hit rate, from the api's /v1/stats (one api instance; see docs/api.md)."""
        base = self.settings.dashboard_api_url.rstrip("/")
        if not base:
            return {"hit_rate": None, "source": None}
        if self._session is None:
            self._session = requests.Session()
        try:
            reply = self._session.get(f"{base}/v1/stats", timeout=API_TIMEOUT_S)
            reply.raise_for_status()
            cache = reply.json()["cache"]
            return {"hit_rate": cache.get("hit_rate"), "hits": cache.get("hits"), "misses": cache.get("misses"),
                    "answered_from": cache.get("submissions"), "source": f"{base}/v1/stats"}
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            logger.warning("cache hit rate from %s/v1/stats unavailable: %s", base, exc)
            return {"hit_rate": None, "source": f"{base}/v1/stats", "error": type(exc).__name__}

    # --- Runtime (see qaflow.services.web.app) ---

    def warm_up(self) -> None:
        _ = self.store

    def ready(self) -> dict[str, str]:
        try:
            store = self.store
            if isinstance(store, SqlStore):
                Queries(store).ping()
        except Exception as exc:
            return {"store": f"{type(exc).__name__}: {exc}"}
        return {"store": "ok"}

    def close(self) -> None:
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()
        if self._session is not None:
            self._session.close()
            self._session = None
