"""The service subcharts take their shared defaults from the library chart (charts/common
values.yaml exports.workload, imported with import-values) and list only what differs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.render import CHART, render

SERVICES = ("api", "dashboard", "llm-worker", "retry-worker", "scorer", "storage-writer", "traffic-gen")
DEFAULTS = yaml.safe_load((CHART / "charts" / "common" / "values.yaml").read_text())["exports"]["workload"]


def _leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _deployment(docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == f"qaflow-{component}")


@pytest.mark.parametrize("service", SERVICES)
def test_subchart_imports_the_library_defaults(service: str) -> None:
    chart = yaml.safe_load((CHART / "charts" / service / "Chart.yaml").read_text())
    assert {"name": "common", "version": "0.1.0", "import-values": ["workload"]} in chart["dependencies"]
    assert (CHART / "charts" / service / "charts" / "common" / "Chart.yaml").is_file()


@pytest.mark.parametrize("service", SERVICES)
def test_subchart_values_repeat_no_default(service: str) -> None:
    own = _leaves(yaml.safe_load((CHART / "charts" / service / "values.yaml").read_text()))
    defaults = _leaves(DEFAULTS)
    repeated = sorted(k for k, v in own.items() if k in defaults and defaults[k] == v)
    # llm-worker states replicaCount to document what it means under an autoscaler.
    assert repeated in ([], ["replicaCount"] if service == "llm-worker" else [])


def test_defaults_reach_the_rendered_workloads(helm_bin: Path) -> None:
    docs = render(helm_bin=helm_bin)
    retry = _deployment(docs, "retry-worker")["spec"]["template"]["spec"]
    assert retry["terminationGracePeriodSeconds"] == DEFAULTS["terminationGracePeriodSeconds"]
    assert retry["containers"][0]["resources"] == DEFAULTS["resources"]
    # A subchart's own value wins over the default, in a nested map too.
    dashboard = _deployment(docs, "dashboard")["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert dashboard["limits"] == {"cpu": DEFAULTS["resources"]["limits"]["cpu"], "memory": "384Mi"}
    assert _deployment(docs, "traffic-gen")["spec"]["replicas"] == 0  # 0 beats the default 1
    scorer = _deployment(docs, "scorer")["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    assert scorer["failureThreshold"] == 60
    assert scorer["periodSeconds"] == DEFAULTS["probes"]["startup"]["periodSeconds"]


def test_a_users_null_still_removes_a_default(helm_bin: Path, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("api:\n  probes:\n    startup: null\n")
    docs = render(values_files=[values], helm_bin=helm_bin)
    assert "startupProbe" not in _deployment(docs, "api")["spec"]["template"]["spec"]["containers"][0]
    assert "startupProbe" in _deployment(docs, "dashboard")["spec"]["template"]["spec"]["containers"][0]
