"""The optional Grafana dashboard ConfigMap and PrometheusRule (values ``monitoring.*``):
off by default, rendered for kube-prometheus-stack when enabled, valid objects, the dashboard
JSON carried unchanged from its one source file, and a runbook line for every alert."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.charts import crd_schemas
from tests.charts.conftest import KUBE_VERSION, Renders
from tests.charts.render import REPO, render
from tests.charts.test_chart_schemas import KUBE_VERSIONS, core_errors, crd_errors

pytestmark = pytest.mark.charts

DASHBOARD_FILE = REPO / "charts" / "qaflow" / "files" / "monitoring" / "qaflow-dashboard.json"
OPERATIONS = REPO / "docs" / "operations.md"
ENABLED = {"monitoring.grafanaDashboard.enabled": True, "monitoring.prometheusRule.enabled": True}
# The alerts issue 14 asks for, one per symptom.
ALERTS = {
    "QaflowConsumerLagGrowing",  # lag growing
    "QaflowDeadLetters",  # dead letters per minute
    "QaflowFailedShareHigh",  # failed share
    "QaflowLlmQuotaShareHigh",  # a sustained LLM 429 share
    "QaflowNoConsumption",  # no consumption
    "QaflowFlinkJobRestarting",  # Flink job restarting ...
    "QaflowFlinkCheckpointsFailing",  # ... or checkpoints failing
    "QaflowStoreUnavailable",  # the store unavailable
}


@pytest.fixture(scope="module")
def monitoring_docs(helm_bin: Path) -> list[dict[str, Any]]:
    return render(
        "production", set_values={**ENABLED, "monitoring.grafanaDashboard.namespace": "monitoring"},
        kube_version=KUBE_VERSION, helm_bin=helm_bin,
    )


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["labels"].get("app.kubernetes.io/component")
             == "monitoring"]
    assert len(found) == 1, [d["metadata"]["name"] for d in found]
    return found[0]


@pytest.mark.parametrize("value_set", ["default", "production"])
def test_monitoring_is_off_by_default(renders: Renders, value_set: str) -> None:
    kinds = {(d["kind"], d["metadata"].get("labels", {}).get("app.kubernetes.io/component"))
             for d in renders[value_set]}
    assert ("PrometheusRule", "monitoring") not in kinds
    assert ("ConfigMap", "monitoring") not in kinds


def test_dashboard_configmap_is_labelled_for_the_grafana_sidecar(monitoring_docs: list[dict[str, Any]]) -> None:
    cm = only(monitoring_docs, "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == "monitoring"
    assert list(cm["data"]) == ["qaflow.json"]
    # The JSON arrives unchanged from its one source file.
    assert json.loads(cm["data"]["qaflow.json"]) == json.loads(DASHBOARD_FILE.read_text())
    failures = [f"[k8s {v}] {e}" for v in KUBE_VERSIONS for e in core_errors(cm, v)]
    assert not failures, failures


def test_dashboard_covers_the_pipeline() -> None:
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    titles = {p["title"] for p in dashboard["panels"] if p["type"] != "row"}
    for wanted in ("Throughput per stage", "API latency", "LLM calls by outcome", "429 share",
                   "AIMD concurrency limit", "Consumer lag per group", "Score distribution (score-worker)",
                   "Routing outcomes", "Dead letters per minute", "Flink job uptime", "Flink job restarts",
                   "Checkpoints"):
        assert wanted in titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}", p["title"]  # no data source baked in
            assert p["targets"], p["title"]


def test_prometheus_rule_has_every_alert_with_a_runbook_line(monitoring_docs: list[dict[str, Any]]) -> None:
    rule = only(monitoring_docs, "PrometheusRule")
    rules = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} == ALERTS
    headings = set(re.findall(r"^### (\S+)\s*$", OPERATIONS.read_text(), re.M))
    for r in rules:
        url = r["annotations"]["runbook_url"]
        assert url.endswith(f"docs/operations.md#{r['alert'].lower()}"), url
        assert r["alert"] in headings, f"no runbook line for {r['alert']} in docs/operations.md"
        assert r["labels"]["severity"] in {"warning", "critical"}
        assert 'namespace="qaflow"' in r["expr"] or "consumergroup=~" in r["expr"], r["expr"]


def test_the_crd_conversion_reproduces_the_shared_podmonitor_schema(schemas_dir: Path) -> None:
    """The conversion that makes the PrometheusRule schema below is the shared folder's own."""
    shared = json.loads((schemas_dir / "monitoring.coreos.com" / "podmonitor_v1.json").read_text())
    assert crd_schemas.crd_schema("podmonitors") == shared


def test_prometheus_rule_validates_against_the_crd(
    monitoring_docs: list[dict[str, Any]], schemas_dir: Path, tmp_path: Path
) -> None:
    rule = only(monitoring_docs, "PrometheusRule")
    if not (schemas_dir / "monitoring.coreos.com" / "prometheusrule_v1.json").is_file():
        # The shared folder has none: convert the Prometheus Operator's CRD of the same tag.
        crd_schemas.write_schema(tmp_path, "prometheusrules", "PrometheusRule")
        schemas_dir = tmp_path
    assert not crd_errors(rule, schemas_dir)
    broken = json.loads(json.dumps(rule))
    broken["spec"]["groups"][0]["rules"][0]["expresion"] = "up"  # a misspelt field is an error
    assert any("expresion" in e for e in crd_errors(broken, schemas_dir))


@pytest.mark.parametrize("value_set", ["default", "production"])
def test_strimzi_kafka_exporter_follows_its_value(renders: Renders, value_set: str) -> None:
    """Off by default; production turns it on, with a PodMonitor on Strimzi's exporter pods."""
    docs = renders[value_set]
    (kafka,) = [d for d in docs if d["kind"] == "Kafka"]
    monitors = [d for d in docs if d["kind"] == "PodMonitor" and d["metadata"]["name"].endswith("-kafka-exporter")]
    if value_set == "default":
        assert "kafkaExporter" not in kafka["spec"] and not monitors
        return
    assert kafka["spec"]["kafkaExporter"] == {"groupRegex": ".*", "topicRegex": ".*"}
    (monitor,) = monitors
    cluster = kafka["metadata"]["name"]
    assert monitor["spec"]["selector"]["matchLabels"] == {
        "strimzi.io/cluster": cluster, "strimzi.io/name": f"{cluster}-kafka-exporter"}
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "tcp-prometheus"


def test_values_refuse_a_bad_threshold(helm_bin: Path) -> None:
    from tests.charts.render import HelmError

    with pytest.raises(HelmError, match="failedShare"):
        render(set_values={**ENABLED, "monitoring.prometheusRule.thresholds.failedShare": 5}, helm_bin=helm_bin)
