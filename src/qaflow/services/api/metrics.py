"""The api's own metrics: where submissions were answered from, and cache lookups.

The cache hit rate in ``/v1/stats`` is read back from these counters, so it covers every
gunicorn worker of this api instance since it started (``/metrics`` has the same numbers);
across replicas, ask Prometheus: ``sum(rate(qaflow_api_cache_lookups_total{result="hit"}[5m]))
/ sum(rate(qaflow_api_cache_lookups_total{result=~"hit|miss"}[5m]))``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter

from qaflow.cache.base import Cache, CacheStats
from qaflow.core.messages import ResultMessage
from qaflow.pipeline.submit import Source
from qaflow.services.web.prom import counter_totals

SUBMISSIONS = Counter(
    "qaflow_api_submissions_total",
    "Questions submitted, by where the answer came from: cache, store, queued (enqueued now) "
    "or in-flight (enqueued earlier, no result yet).",
    ["source"],
)
CACHE_LOOKUPS = Counter(
    "qaflow_api_cache_lookups_total", "Result cache lookups by outcome: hit, miss or error (cache unreachable).",
    ["result"],
)

for _source in Source:
    SUBMISSIONS.labels(_source.value)
for _result in ("hit", "miss", "error"):
    CACHE_LOOKUPS.labels(_result)


class MeteredCache:
    """A cache that counts its lookups in :data:`CACHE_LOOKUPS`.

    An error is told from a miss by the inner cache's error count moving during the call;
    under concurrent failures a miss may be counted as an error, never a hit as anything else.
    """

    def __init__(self, inner: Cache) -> None:
        self.inner = inner
        self.url = inner.url
        self.stats: CacheStats = inner.stats  # the same object: the inner cache keeps counting in it

    def start(self) -> None:
        self.inner.start()

    def get(self, question_id: str) -> ResultMessage | None:
        errors = self.inner.stats.errors
        hit = self.inner.get(question_id)
        if hit is not None:
            CACHE_LOOKUPS.labels("hit").inc()
        else:
            CACHE_LOOKUPS.labels("error" if self.inner.stats.errors > errors else "miss").inc()
        return hit

    def put(self, result: ResultMessage, ttl_s: int) -> None:
        self.inner.put(result, ttl_s)

    def get_many(self, question_ids: Sequence[str]) -> dict[str, ResultMessage]:
        errors = self.inner.stats.errors
        hits = self.inner.get_many(question_ids)
        missed = len(question_ids) - len(hits)
        CACHE_LOOKUPS.labels("hit").inc(len(hits))
        if missed:
            CACHE_LOOKUPS.labels("error" if self.inner.stats.errors > errors else "miss").inc(missed)
        return hits

    def put_many(self, results: Sequence[ResultMessage], ttl_s: int) -> None:
        self.inner.put_many(results, ttl_s)

    def close(self) -> None:
        self.inner.close()


def cache_summary() -> dict[str, Any]:
    lookups = counter_totals("qaflow_api_cache_lookups", "result")
    hits, misses, errors = (int(lookups.get(k, 0)) for k in ("hit", "miss", "error"))
    answered = counter_totals("qaflow_api_submissions", "source")
    return {
        "scope": "this api instance (all its workers) since it started",
        "hits": hits,
        "misses": misses,
        "errors": errors,
        "hit_rate": round(hits / (hits + misses), 4) if hits + misses else None,
        "submissions": {s.value: int(answered.get(s.value, 0)) for s in Source},
    }
