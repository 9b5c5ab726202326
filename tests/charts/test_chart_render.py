"""helm lint and helm template over every value set; names, labels, selectors; values checks."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.charts.conftest import ALL_SETS, KUBE_VERSION, Renders
from tests.charts.render import CHART, VALUE_SETS, HelmError, helm, render, values_file

pytestmark = pytest.mark.charts

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)


def test_helm_is_the_pinned_version(helm_bin: Path) -> None:
    out = helm(["version", "--template", "{{.Version}}"], helm_bin)
    assert out.startswith("v3.21."), f"expected helm v3.21.x (scripts/install-helm.sh), got {out}"


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_lint(helm_bin: Path, value_set: str) -> None:
    out = helm(
        ["lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION, "--values", str(values_file(value_set))],
        helm_bin,
    )
    assert "0 chart(s) failed" in out, out


@pytest.mark.parametrize("value_set", ALL_SETS)
def test_template_renders_named_labelled_objects(renders: Renders, value_set: str) -> None:
    docs = renders[value_set]
    assert docs, "nothing rendered"
    seen = Counter((d["kind"], d["metadata"]["name"]) for d in docs)
    assert not [k for k, n in seen.items() if n > 1], f"duplicate objects: {[k for k, n in seen.items() if n > 1]}"
    for d in docs:
        name, kind = d["metadata"]["name"], d["kind"]
        assert len(name) <= 63, f"{kind}/{name}: longer than 63 characters"
        pattern = DNS_LABEL if kind in {"Service", "Pod", "Deployment", "StatefulSet"} else DNS_SUBDOMAIN
        assert pattern.match(name), f"{kind}/{name}: not a valid Kubernetes name"
        labels = d["metadata"].get("labels") or {}
        missing = [k for k in STANDARD_LABELS if k not in labels]
        assert not missing, f"{kind}/{name}: missing labels {missing}"
        assert len(labels["helm.sh/chart"]) <= 63


@pytest.mark.parametrize("value_set", ALL_SETS)
def test_selectors_use_name_and_instance_only(renders: Renders, value_set: str) -> None:
    for d in renders[value_set]:
        kind = d["kind"]
        if kind in {"Deployment", "StatefulSet"}:
            selector = d["spec"]["selector"]["matchLabels"]
            template = d["spec"]["template"]["metadata"]["labels"]
        elif kind == "Service":
            selector = d["spec"]["selector"]
            template = None
        else:
            continue
        assert set(selector) == {"app.kubernetes.io/name", "app.kubernetes.io/instance"}, (
            f"{kind}/{d['metadata']['name']}"
        )
        if template is not None:
            assert selector.items() <= template.items(), f"{kind}/{d['metadata']['name']}: selector does not match pods"


@pytest.mark.parametrize("value_set", ALL_SETS)
def test_every_service_selects_a_workload(renders: Renders, value_set: str) -> None:
    docs = renders[value_set]
    pod_labels = [
        d["spec"]["template"]["metadata"]["labels"] for d in docs if d["kind"] in {"Deployment", "StatefulSet"}
    ]
    for svc in (d for d in docs if d["kind"] == "Service"):
        sel = svc["spec"]["selector"]
        assert any(sel.items() <= labels.items() for labels in pod_labels), (
            f"Service/{svc['metadata']['name']} selects nothing"
        )
    for pdb in (d for d in docs if d["kind"] == "PodDisruptionBudget"):
        sel = pdb["spec"]["selector"]["matchLabels"]
        targets = [
            d
            for d in docs
            if d["kind"] == "Deployment" and sel.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert targets, f"PodDisruptionBudget/{pdb['metadata']['name']} selects nothing"
        replicas = targets[0]["spec"].get("replicas", 2)  # absent: an autoscaler with minReplicas > 1
        assert replicas > 1, f"PodDisruptionBudget/{pdb['metadata']['name']} guards a single pod (blocks drains)"


def undocumented_keys(path: Path) -> list[str]:
    """Keys with no comment above them, unless an ancestor carries a helm-docs ``# --`` comment
    (then the children are part of that documented value)."""
    missing: list[str] = []
    stack: list[tuple[int, bool]] = []  # (indent, documented with "# --") of the enclosing keys
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "- ")) or not re.match(r"^\s*[\w.\-\"']+:", line):
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        block: list[str] = []  # the comment lines right above the key, at its indentation
        while j >= 0 and lines[j].strip().startswith("#") and len(lines[j]) - len(lines[j].lstrip()) == indent:
            block.append(lines[j].strip())
            j -= 1
        if not block and not any(doc for _, doc in stack):
            missing.append(f"{path.relative_to(CHART)}:{i + 1}: {stripped}")
        stack.append((indent, any(c.startswith("# --") for c in block)))
    return missing


def test_every_values_key_has_a_comment() -> None:
    """Chart convention: a comment on every key of values.yaml (umbrella and subcharts)."""
    files = [CHART / "values.yaml", *sorted((CHART / "charts").glob("*/values.yaml"))]
    missing = [m for path in files for m in undocumented_keys(path)]
    assert not missing, "values keys without a comment:\n" + "\n".join(missing[:40])


def test_values_schema_rejects_a_misspelt_key(helm_bin: Path) -> None:
    with pytest.raises(HelmError, match="replicaCout"):
        render(set_values={"api.replicaCout": "2"}, helm_bin=helm_bin)


def test_values_schema_rejects_an_unknown_mode(helm_bin: Path) -> None:
    with pytest.raises(HelmError, match="postgres"):
        render(set_values={"global.postgres.mode": "mysql"}, helm_bin=helm_bin)


def test_keda_beyond_the_partitions_is_refused(helm_bin: Path) -> None:
    with pytest.raises(HelmError, match=r"exceeds kafka\.topics\.partitions"):
        render(
            set_values={"llm-worker.autoscaling.mode": "keda", "llm-worker.autoscaling.maxReplicas": 9},
            helm_bin=helm_bin,
        )


def test_external_database_needs_a_secret(helm_bin: Path) -> None:
    with pytest.raises(HelmError, match="existingSecret"):
        render(set_values={"global.postgres.mode": "external", "global.postgres.host": "db"}, helm_bin=helm_bin)


def render_notes(helm_bin: Path, tmp_path: Path, value_set: str) -> str:
    """NOTES.txt as `helm install` would print it (helm template does not, and install needs a cluster)."""
    chart = tmp_path / "qaflow"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n"
        '  notes: {{ include "qaflow/templates/NOTES.txt" . | toJson }}\n'
    )
    out = helm(
        [
            "template",
            "qaflow",
            str(chart),
            "--namespace",
            "qaflow",
            "--kube-version",
            KUBE_VERSION,
            "--values",
            str(values_file(value_set)),
            "--show-only",
            "templates/zz-notes.yaml",
        ],
        helm_bin,
    )
    return str(yaml.safe_load(out)["data"]["notes"])


def test_notes_print_the_port_forwards(helm_bin: Path, tmp_path: Path) -> None:
    notes = render_notes(helm_bin, tmp_path, "kind")
    for fwd in (
        "svc/qaflow-api 8000:8000",
        "svc/qaflow-dashboard 8002:8002",
        "svc/qaflow-score-job-rest 8081:8081",
        "svc/qaflow-kafka-ui 8080:8080",
        "helm test qaflow",
    ):
        assert fwd in notes, f"NOTES.txt lacks {fwd!r}"


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_helm_test_pod_submits_to_the_api(renders: Renders, value_set: str) -> None:
    pods = [d for d in renders[value_set] if d["kind"] == "Pod"]
    assert len(pods) == 1
    pod = pods[0]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["API_URL"] == "http://qaflow-api:8000"
    script = pod["spec"]["containers"][0]["args"][0]
    assert "/v1/questions" in script
    assert all(s in script for s in ("validated", "exhausted", "failed"))
    compile(script, "helm-test", "exec")  # the one-liner is valid Python


def test_ci_value_sets_are_yaml_mappings() -> None:
    for value_set in VALUE_SETS:
        data = yaml.safe_load(values_file(value_set).read_text())
        assert isinstance(data, dict), value_set
