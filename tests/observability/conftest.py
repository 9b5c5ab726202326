"""Fixtures of the observability tests: the end-to-end service stack (tests/e2e, reused, not
copied), promtool (scripts/install-promtool.sh) and the chart's monitoring objects rendered by helm.

A missing promtool, helm or chromium skips these tests on a workstation and fails them under
CI (``CI`` set), as the chart tests do.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.charts.conftest import unavailable
from tests.charts.render import cache_dir, find_helm, render
from tests.e2e.conftest import private_redis, pytest_runtest_makereport, stack

__all__ = ["private_redis", "pytest_runtest_makereport", "stack"]

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package (k8s-dev/local/install-deps.sh)
MONITORING_ON = {"monitoring.grafanaDashboard.enabled": True, "monitoring.prometheusRule.enabled": True}


def find_promtool() -> Path | None:
    """``$QAFLOW_PROMTOOL``, else the cache's bin/promtool (scripts/install-promtool.sh), else PATH."""
    explicit = os.environ.get("QAFLOW_PROMTOOL")
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    cached = cache_dir() / "bin" / "promtool"
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    found = shutil.which("promtool")
    return Path(found) if found else None


@pytest.fixture(scope="session")
def promtool() -> Path:
    found = find_promtool()
    if found is None:
        unavailable("promtool not found: run scripts/install-promtool.sh (builds it into ~/.cache/qaflow/bin)")
    return found


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        unavailable(f"{CHROMIUM} not found: run k8s-dev/local/install-deps.sh (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def monitoring_objects() -> list[dict[str, Any]]:
    """The dashboard ConfigMap and the PrometheusRule, as the chart renders them."""
    helm = find_helm()
    if helm is None:
        unavailable("helm not found: run scripts/install-helm.sh")
    docs = render(set_values=MONITORING_ON, helm_bin=helm)
    return [d for d in docs if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "monitoring"]


@pytest.fixture(scope="session")
def prometheus_rule(monitoring_objects: list[dict[str, Any]]) -> dict[str, Any]:
    (rule,) = [d for d in monitoring_objects if d["kind"] == "PrometheusRule"]
    return rule
