"""Prometheus for the web services, gunicorn multiprocess mode included.

With ``PROMETHEUS_MULTIPROC_DIR`` set, every worker writes its metrics to files there and
:func:`metrics_registry` adds them up; without it (tests, one process) the default
registry is used. Requests are counted by endpoint: the URL rule, not the raw path, so an
id never becomes a label value.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client itself; we only follow it

REQUESTS = Counter(
    "qaflow_http_requests_total", "HTTP requests by endpoint (URL rule), method and status.",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "qaflow_http_request_duration_seconds", "Time to answer an HTTP request, by endpoint and method.",
    ["endpoint", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
IN_FLIGHT = Gauge(
    "qaflow_http_requests_in_flight", "HTTP requests being answered now.", multiprocess_mode="livesum"
)


def metrics_registry() -> CollectorRegistry:
    """All workers' metrics in multiprocess mode; this process's otherwise."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def counter_totals(name: str, label: str) -> dict[str, float]:
    """Current totals of counter ``name`` (without ``_total``) by one label, over all workers."""
    totals: dict[str, float] = {}
    for family in metrics_registry().collect():
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name == f"{name}_total":
                key = sample.labels.get(label, "")
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def install_request_metrics(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.qaflow_started = time.perf_counter()
        IN_FLIGHT.inc()

    @app.after_request
    def _count(response: Response) -> Response:
        started = g.pop("qaflow_started", None)
        if started is not None:
            endpoint = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
            LATENCY.labels(endpoint, request.method).observe(time.perf_counter() - started)
            REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
            IN_FLIGHT.dec()
            g.qaflow_counted = True
        return response

    @app.teardown_request
    def _end(exc: BaseException | None) -> None:
        if not g.pop("qaflow_counted", False) and g.pop("qaflow_started", None) is not None:
            IN_FLIGHT.dec()  # after_request never ran
