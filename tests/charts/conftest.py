"""Fixtures of the chart tests: helm (built by scripts/install-helm.sh), the rendered value
sets (rendered once per session), and the custom-resource schemas in ../shared/k8s-schemas.

A missing helm or schema folder skips these tests on a workstation and fails them under CI
(``CI`` set) or with ``QAFLOW_REQUIRE_HELM=1``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.charts.render import REPO, VALUE_SETS, find_helm, render

# Value sets the tests render: the four CI sets, plus what skaffold deploys in each profile.
DEV = REPO / "k8s-dev"
SKAFFOLD_SETS: dict[str, list[Path]] = {
    "skaffold-kind": [DEV / "values-dev.yaml", DEV / "values-kind.yaml"],
    "skaffold-minikube": [DEV / "values-dev.yaml", DEV / "values-minikube.yaml"],
    "skaffold-kind-keda-cnpg": [DEV / "values-dev.yaml", DEV / "values-kind.yaml", DEV / "values-cnpg.yaml"],
}
SKAFFOLD_SET_VALUES: dict[str, dict[str, str | int | float | bool]] = {
    "skaffold-kind-keda-cnpg": {"llm-worker.autoscaling.mode": "keda"}
}
ALL_SETS = (*VALUE_SETS, *SKAFFOLD_SETS)
KUBE_VERSION = "1.34.0"  # the kind node image of k8s-dev/kind-cluster.yaml


def _required() -> bool:
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return ci or os.environ.get("QAFLOW_REQUIRE_HELM") == "1"


def unavailable(reason: str) -> NoReturn:
    if _required():
        pytest.fail(f"{reason} (required under CI / QAFLOW_REQUIRE_HELM=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    found = find_helm()
    if found is None:
        unavailable(
            "helm not found: run scripts/install-helm.sh (builds it into ~/.cache/qaflow/bin) or set QAFLOW_HELM"
        )
    return found


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    """``$QAFLOW_K8S_SCHEMAS``, else ``<repo>/../shared/k8s-schemas`` (CI clones shared/ beside the repo)."""
    path = Path(os.environ.get("QAFLOW_K8S_SCHEMAS") or REPO.parent / "shared" / "k8s-schemas")
    if not path.is_dir():
        unavailable(f"custom-resource schemas not found at {path} (set QAFLOW_K8S_SCHEMAS)")
    return path


class Renders:
    """Rendered value sets, each rendered on first use."""

    def __init__(self, helm: Path) -> None:
        self.helm = helm
        self._cache: dict[str, list[dict[str, Any]]] = {}

    def __getitem__(self, value_set: str) -> list[dict[str, Any]]:
        if value_set not in self._cache:
            if value_set in SKAFFOLD_SETS:
                docs = render(
                    values_files=SKAFFOLD_SETS[value_set],
                    set_values=SKAFFOLD_SET_VALUES.get(value_set),
                    kube_version=KUBE_VERSION,
                    helm_bin=self.helm,
                )
            else:
                docs = render(value_set, kube_version=KUBE_VERSION, helm_bin=self.helm)
            self._cache[value_set] = docs
        return self._cache[value_set]


@pytest.fixture(scope="session")
def renders(helm_bin: Path) -> Renders:
    return Renders(helm_bin)
