"""k8s-dev/bootstrap.sh and scripts/install-helm.sh: shellcheck-clean, pinned, and in step
with the chart; the render helper's kubelet-like env resolution."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.charts.render import CHART, REPO, expand, resolve_env

pytestmark = pytest.mark.charts

SCRIPTS = [REPO / "k8s-dev" / "bootstrap.sh", REPO / "scripts" / "install-helm.sh"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck(script: object) -> None:
    exe = shutil.which("shellcheck")
    if exe is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    proc = subprocess.run([exe, "--severity=style", str(script)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout


def test_bootstrap_pins_the_operators_the_chart_needs() -> None:
    out = subprocess.run(
        [
            "bash",
            str(REPO / "k8s-dev" / "bootstrap.sh"),
            "--dry-run",
            "--with-keda",
            "--with-cnpg",
            "--with-metrics-server",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert "oci://quay.io/strimzi-helm/strimzi-kafka-operator --version 1.2.0" in out
    assert "flink-kubernetes-operator-1.15.0/" in out and "webhook.create=false" in out
    # The released chart pins its image by a ghcr.io commit-hash tag; a tag-only override
    # (image.tag=1.15.0) names a tag ghcr.io does not have. Keep the pin, or set both.
    if "image.tag=" in out:
        assert "image.repository=apache/flink-kubernetes-operator" in out, "image.tag set without its repository"
    assert "kedacore/keda --version 2.20.2" in out
    assert "cnpg-1.30.0.yaml" in out
    assert "watchNamespaces={qaflow}" in out
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["kafka"]["version"] in {"4.2.0", "4.2.1", "4.3.0", "4.3.1"}, "Kafka versions of Strimzi 1.2.0"


def test_kind_cluster_is_pinned() -> None:
    cfg = yaml.safe_load((REPO / "k8s-dev" / "kind-cluster.yaml").read_text())
    image = cfg["nodes"][0]["image"]
    assert image.startswith("kindest/node:v1.") and ":latest" not in image


def test_kind_cluster_keeps_disk_eviction_off() -> None:
    """kind switches disk-pressure eviction off on purpose; only the memory threshold is ours."""
    cfg = yaml.safe_load((REPO / "k8s-dev" / "kind-cluster.yaml").read_text())
    for patch in cfg["nodes"][0].get("kubeadmConfigPatches", []):
        kubelet = yaml.safe_load(patch)
        if kubelet.get("kind") == "KubeletConfiguration":
            assert set(kubelet.get("evictionHard", {})) <= {"memory.available"}, kubelet["evictionHard"]


def test_expand_follows_kubernetes_rules() -> None:
    defined = {"A": "1", "B": None}
    assert expand("x$(A)y", defined) == "x1y"
    assert expand("$(B)", defined) == "$(B)"  # undefined (or unresolved): left as is
    assert expand("$(C)", defined) == "$(C)"
    assert expand("$$(A)", defined) == "$(A)"  # escaped


def test_resolve_env_uses_earlier_variables_and_secrets() -> None:
    env = [
        {"name": "URL", "value": "pg://u:$(PGPASSWORD)@h"},  # before PGPASSWORD: not expanded
        {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
        {"name": "URL2", "value": "pg://u:$(PGPASSWORD)@h"},
        {"name": "OTHER", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "k"}}},
    ]
    resolved, unresolved = resolve_env(env, {("s", "password"): "pw"})
    assert resolved["URL"] == "pg://u:$(PGPASSWORD)@h"
    assert resolved["URL2"] == "pg://u:pw@h"
    assert resolved["OTHER"] is None and unresolved == ["OTHER"]
    resolved, _ = resolve_env(env, {}, missing_secret="x")
    assert resolved["URL2"] == "pg://u:x@h"


def test_render_for_a_local_run(helm_bin: object) -> None:
    """What the chart-driven local run does: external backends on loopback, secrets supplied."""
    from tests.charts.render import component, render, workloads

    docs = render(
        set_values={
            "global.kafka.mode": "external",
            "global.kafka.bootstrapServers": "127.0.0.1:19092",
            "global.postgres.mode": "external",
            "global.postgres.host": "127.0.0.1",
            "global.postgres.port": 15432,
            "global.postgres.auth.existingSecret": "local-pg",
            "global.redis.mode": "external",
            "global.redis.host": "127.0.0.1",
        },
        helm_bin=helm_bin,  # type: ignore[arg-type]
    )
    assert not [d for d in docs if d["kind"] in {"Kafka", "KafkaTopic", "StatefulSet"}]
    by = {component(w): w for w in workloads(docs, external_secrets={("local-pg", "password"): "pw"})}
    api = by["api"]
    assert api.command == [
        "gunicorn",
        "--config",
        "python:qaflow.services.api.gunicorn_conf",
        "qaflow.services.api.app:create_app()",
    ]
    assert api.env["QAFLOW_BUS_URL"] == "kafka://127.0.0.1:19092"
    assert api.env["QAFLOW_KAFKA_CREATE_TOPICS"] == "true"
    assert api.env["QAFLOW_STORE_URL"] == "postgresql://qaflow:pw@127.0.0.1:15432/qaflow"
    assert api.env["QAFLOW_CACHE_URL"] == "redis://127.0.0.1:6379/0"
    assert api.ports == {"http": 8000} and api.probes["readiness"].path == "/readyz"
    assert by["llm-worker"].command == ["python", "-m", "qaflow.services.llm_worker"]
    job_file = "/opt/flink/usrlib/score_job.py"
    assert by["score-job"].args[:4] == ["-pyclientexec", "/opt/venv/bin/python", "-py", job_file]
