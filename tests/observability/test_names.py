"""The name reader itself (no servers): names come from selectors, never from label names,
functions or Grafana variables; exposed names include families that have no sample yet."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from tests.observability.names import (
    dashboard_exprs,
    exporter_names,
    exposed_names,
    load_dashboard,
    metric_names,
    unknown,
    used_names,
)


def test_names_come_from_selectors_only() -> None:
    expr = (
        'histogram_quantile(0.9, sum by (le, job) (rate(a_bucket{job=~"$api_job"}[$__rate_interval])))'
        ' / on (job) group_left b_total or vector(0) + {__name__="c"} + deriv(d[10m:1m])'
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c", "d"}


def test_every_dashboard_query_parses_and_uses_names() -> None:
    dashboard = load_dashboard()
    exprs = dashboard_exprs(dashboard)
    targets = sum(len(p.get("targets", [])) for p in dashboard["panels"])
    assert len(exprs) == targets + 2  # and the two label_values() variables
    used = used_names(exprs)
    assert all(metric_names(e) for _, e in exprs)  # no query without a metric
    assert "qaflow_llm_calls_total" in used and "kafka_consumergroup_lag" in used


def test_exposed_names_include_families_without_samples() -> None:
    registry = CollectorRegistry()
    Counter("x_things_total", "doc", ["kind"], registry=registry)  # labelled, never incremented
    Histogram("x_seconds", "doc", registry=registry)
    Gauge("x_level", "doc", registry=registry)
    names = exposed_names(generate_latest(registry).decode())
    assert {"x_things_total", "x_seconds_bucket", "x_seconds_count", "x_seconds_sum", "x_level"} <= names
    assert "x_things" not in names


def test_a_misspelt_name_is_reported_with_where_it_is_used() -> None:
    used = used_names([("panel 'p' target A", "rate(qaflow_llm_calls_totl[5m])"), ("alert", "up")])
    assert unknown(used, {"qaflow_llm_calls_total", "up"}) == {"qaflow_llm_calls_totl": ["panel 'p' target A"]}


def test_the_exporter_list_names_only_foreign_metrics() -> None:
    names = exporter_names()
    assert names and not [n for n in names if n.startswith("qaflow_")]
    assert set(names.values()) == {"strimzi-kafka-exporter", "flink-prometheus-reporter", "qaflow-score-job"}
