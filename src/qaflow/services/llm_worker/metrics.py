"""Prometheus metrics of the llm-worker's calls (served on /metrics by the probes server)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from qaflow.core.cost import PriceTable, call_cost_usd
from qaflow.llm.base import LlmReply

CALLS = Counter("qaflow_llm_calls_total", "LLM calls by outcome and error class.", ["outcome", "error_class"])
CALL_SECONDS = Histogram(
    "qaflow_llm_call_seconds",
    "Latency of LLM calls (after any rate-limit wait), by outcome.",
    ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120),
)
TOKENS = Counter("qaflow_llm_tokens_total", "Tokens reported by the provider.", ["kind"])
COST = Counter(
    "qaflow_llm_cost_usd_total",
    "Money spent on answered LLM calls, in USD, priced by QAFLOW_LLM_PRICES (calls of an unpriced model add nothing).",
    ["model"],
)
IN_FLIGHT = Gauge("qaflow_llm_calls_in_flight", "LLM calls in progress.")
CONCURRENCY_LIMIT = Gauge("qaflow_llm_concurrency_limit", "Calls allowed in flight now (the AIMD limit).")
CONCURRENCY_MAX = Gauge("qaflow_llm_concurrency_max", "QAFLOW_LLM_CONCURRENCY.")
QUOTA_SHARE = Gauge("qaflow_llm_quota_share", "Share of the calls in the AIMD window answered 429.")
QUOTA_EVENTS = Gauge(
    "qaflow_llm_quota_events", "AIMD windows judged a quota since start (each halves the limit, down to the floor)."
)
RPM_LIMIT = Gauge("qaflow_llm_rpm_limit", "QAFLOW_RPM_LIMIT (0 = none).")
WAITS = Counter("qaflow_llm_rate_limit_waits_total", "Calls that waited before being made, by reason.", ["reason"])
WAIT_SECONDS = Counter(
    "qaflow_llm_rate_limit_wait_seconds_total", "Time calls spent waiting before being made, by reason.", ["reason"]
)


class PrometheusObserver:
    """:class:`~qaflow.services.limits.provider.CallObserver` feeding the metrics above."""

    def __init__(self, prices: PriceTable | None = None) -> None:
        self.prices: PriceTable = prices or {}

    def call_started(self) -> None:
        IN_FLIGHT.inc()

    def call_finished(self, outcome: str, error_class: str, seconds: float, reply: LlmReply | None) -> None:
        IN_FLIGHT.dec()
        CALLS.labels(outcome, error_class or "none").inc()
        CALL_SECONDS.labels(outcome).observe(seconds)
        if reply is not None:
            TOKENS.labels("prompt").inc(reply.prompt_tokens or 0)
            TOKENS.labels("completion").inc(reply.completion_tokens or 0)
            cost = call_cost_usd(self.prices, reply.model, reply.prompt_tokens, reply.completion_tokens)
            if cost is not None:
                COST.labels(reply.model).inc(cost)

    def waited(self, reason: str, seconds: float) -> None:
        WAITS.labels(reason).inc()
        WAIT_SECONDS.labels(reason).inc(seconds)
