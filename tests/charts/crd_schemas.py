"""CRD schemas the shared folder lacks, made the way the shared ones were made.

``../shared/k8s-schemas`` has no ``PrometheusRule``. Its README says how its files were made:
the CRD's ``openAPIV3Schema``, converted as yannh/kubeconform's ``openapi2jsonschema.py`` does in
its strict form (every object that lists ``properties`` gets ``additionalProperties: false``,
unless it is marked ``x-kubernetes-preserve-unknown-fields``). :func:`strict_schema` does that
conversion (and moves a leading ``(?i)`` flag group before the ``^``, where Python's ``re``
accepts it); a test checks it reproduces the shared ``podmonitor_v1.json`` exactly from the same
CRD, so the ``PrometheusRule`` schema made here is held to the same rules.

The CRDs come from the Prometheus Operator's Go module (the Go module proxy is reachable here;
GitHub is not), at the tag the shared files name, cached under ``~/.cache/qaflow/crds``.
"""

from __future__ import annotations

import io
import json
import os
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import yaml

GO_PROXY = os.environ.get("GOPROXY", "https://proxy.golang.org").split(",")[0].rstrip("/")
PROMETHEUS_OPERATOR = ("github.com/prometheus-operator/prometheus-operator", "v0.93.0")
CRD_DIR = "example/prometheus-operator-crd"
CACHE = Path(os.environ.get("QAFLOW_CACHE_DIR", Path.home() / ".cache" / "qaflow")) / "crds"


def strict_schema(node: Any) -> Any:
    """The strict JSON schema of an ``openAPIV3Schema`` (a new object; the input is not changed)."""
    if isinstance(node, list):
        return [strict_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict_schema(value) for key, value in node.items()}
    pattern = out.get("pattern")
    if isinstance(pattern, str) and pattern.startswith("^(?i)"):
        # Go's RE2 takes a flag group anywhere; Python's re (jsonschema's) only at the start. Same language.
        out["pattern"] = "(?i)^" + pattern[len("^(?i)"):]
    if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def module_zip(module: str = PROMETHEUS_OPERATOR[0], version: str = PROMETHEUS_OPERATOR[1]) -> Path:
    """The module's zip from the Go module proxy (about 4.6 MB), downloaded once into the cache."""
    target = CACHE / f"{module.replace('/', '_')}@{version}.zip"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(f"{GO_PROXY}/{module}/@v/{version}.zip", timeout=120) as response:
            data = response.read()
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(target)
    return target


def crd_schema(plural: str, version: str = "v1") -> dict[str, Any]:
    """The strict schema of ``monitoring.coreos.com_<plural>.yaml`` at ``version`` (e.g. ``prometheusrules``)."""
    module, tag = PROMETHEUS_OPERATOR
    member = f"{module}@{tag}/{CRD_DIR}/monitoring.coreos.com_{plural}.yaml"
    with zipfile.ZipFile(module_zip()) as archive:
        crd = yaml.safe_load(io.TextIOWrapper(archive.open(member), encoding="utf-8"))
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return strict_schema(served["schema"]["openAPIV3Schema"])  # type: ignore[no-any-return]


def write_schema(directory: Path, plural: str, kind: str, version: str = "v1") -> Path:
    """``<directory>/monitoring.coreos.com/<kind>_<version>.json``, the layout of the shared folder."""
    path = directory / "monitoring.coreos.com" / f"{kind.lower()}_{version}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(crd_schema(plural, version), indent=2))
    return path
