"""Render the umbrella chart with helm and read each workload the way a kubelet would.

Used by the chart tests here and meant for the chart-driven local run: render with the
backends pointed at local servers, then start each workload's command with its env.

    from tests.charts.render import find_helm, render, workloads

    docs = render(
        values_files=["charts/qaflow/ci/default-values.yaml"],
        set_values={
            "global.kafka.mode": "external",
            "global.kafka.bootstrapServers": kafka_bootstrap,      # 127.0.0.1:<port>
            "global.postgres.mode": "external",
            "global.postgres.host": "127.0.0.1",
            "global.postgres.auth.existingSecret": "local-pg",
            "global.redis.mode": "external",
            "global.redis.host": "127.0.0.1",
        },
    )
    for w in workloads(docs, external_secrets={("local-pg", "password"): pg_password}):
        w.command, w.args, w.env, w.ports, w.probes    # env: resolved, $(VAR) expanded

Only helm and PyYAML are needed; nothing talks to a cluster.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "qaflow"
CI_VALUES = CHART / "ci"
VALUE_SETS = ("default", "kind", "minikube", "production")
HELM_VERSION = "v3.21.4"  # what scripts/install-helm.sh builds

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "Pod", "FlinkDeployment"}


class HelmError(RuntimeError):
    """helm failed; the message holds its stderr."""


def cache_dir() -> Path:
    return Path(os.environ.get("QAFLOW_CACHE_DIR") or Path.home() / ".cache" / "qaflow")


def find_helm() -> Path | None:
    """``$QAFLOW_HELM``, else the cache's bin/helm (scripts/install-helm.sh), else helm on PATH."""
    explicit = os.environ.get("QAFLOW_HELM")
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    cached = cache_dir() / "bin" / "helm"
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    found = shutil.which("helm")
    return Path(found) if found else None


def values_file(value_set: str) -> Path:
    """``charts/qaflow/ci/<value_set>-values.yaml``."""
    return CI_VALUES / f"{value_set}-values.yaml"


def helm(args: Sequence[str], helm_bin: Path | None = None, timeout: float = 120) -> str:
    exe = helm_bin or find_helm()
    if exe is None:
        msg = "helm not found: run scripts/install-helm.sh (or set QAFLOW_HELM)"
        raise HelmError(msg)
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        msg = f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr.strip()}"
        raise HelmError(msg)
    return proc.stdout


def render(
    value_set: str | None = None,
    *,
    values_files: Iterable[str | Path] = (),
    set_values: Mapping[str, str | int | float | bool] | None = None,
    release: str = "qaflow",
    namespace: str = "qaflow",
    kube_version: str = "1.33.0",
    helm_bin: Path | None = None,
) -> list[dict[str, Any]]:
    """``helm template`` of the umbrella chart, as a list of objects (hook/test pods included)."""
    args = ["template", release, str(CHART), "--namespace", namespace, "--kube-version", kube_version]
    files = [values_file(value_set)] if value_set else []
    files += [Path(f) for f in values_files]
    for f in files:
        args += ["--values", str(f)]
    for key, value in (set_values or {}).items():
        # Strings stay strings (--set-string); numbers and booleans keep their type (--set).
        flag = "--set-string" if isinstance(value, str) else "--set"
        args += [flag, f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
    out = helm(args, helm_bin)
    return [d for d in yaml.safe_load_all(out) if d]


@dataclass
class Probe:
    kind: str  # liveness, readiness, startup
    path: str | None  # httpGet path, None for exec/tcp probes
    port: int | str | None  # resolved to a number when it names a container port
    exec: list[str] | None = None


@dataclass
class Workload:
    name: str
    kind: str
    container: str
    image: str | None
    command: list[str] | None
    args: list[str]
    env: dict[str, str | None]  # None: from a Secret this render does not contain
    ports: dict[str, int]  # port name -> container port
    probes: dict[str, Probe]
    unresolved: list[str] = field(default_factory=list)  # env names whose Secret was not rendered
    resources: dict[str, Any] = field(default_factory=dict)
    security_context: dict[str, Any] = field(default_factory=dict)
    pod_security_context: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


def secrets_of(docs: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """``{(secret name, key): value}`` of every rendered Secret (data decoded, stringData as is)."""
    out: dict[tuple[str, str], str] = {}
    for d in docs:
        if d.get("kind") != "Secret":
            continue
        name = d["metadata"]["name"]
        for key, value in (d.get("data") or {}).items():
            out[(name, key)] = base64.b64decode(value).decode()
        for key, value in (d.get("stringData") or {}).items():
            out[(name, key)] = str(value)
    return out


_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(value: str, defined: Mapping[str, str | None]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: earlier variables only, ``$$`` escapes, unknown stays."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        got = defined.get(name)
        return got if got is not None else m.group(0)

    return _VAR.sub(sub, value)


def resolve_env(
    env: Sequence[Mapping[str, Any]],
    secrets: Mapping[tuple[str, str], str],
    config_maps: Mapping[tuple[str, str], str] | None = None,
    missing_secret: str | None = None,
) -> tuple[dict[str, str | None], list[str]]:
    resolved: dict[str, str | None] = {}
    unresolved: list[str] = []
    for entry in env:
        name = entry["name"]
        if "value" in entry:
            resolved[name] = expand(str(entry["value"]), resolved)
            continue
        source = entry.get("valueFrom") or {}
        ref = source.get("secretKeyRef") or source.get("configMapKeyRef")
        table = secrets if "secretKeyRef" in source else (config_maps or {})
        if ref is None:
            resolved[name] = None  # fieldRef / resourceFieldRef: filled in by the kubelet
            unresolved.append(name)
            continue
        value = table.get((ref["name"], ref["key"]))
        if value is None:
            unresolved.append(name)
            value = missing_secret
        resolved[name] = value
    return resolved, unresolved


def _probe(kind: str, spec: Mapping[str, Any] | None, ports: Mapping[str, int]) -> Probe | None:
    if not spec:
        return None
    if "httpGet" in spec:
        port = spec["httpGet"].get("port")
        return Probe(kind, spec["httpGet"].get("path", "/"), ports.get(port, port) if isinstance(port, str) else port)
    if "tcpSocket" in spec:
        port = spec["tcpSocket"].get("port")
        return Probe(kind, None, ports.get(port, port) if isinstance(port, str) else port)
    if "exec" in spec:
        return Probe(kind, None, None, exec=list(spec["exec"].get("command", [])))
    return Probe(kind, None, None)


def pod_spec(doc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    kind = doc.get("kind")
    if kind == "Pod":
        return doc.get("spec")
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        return doc["spec"]["template"]["spec"]
    if kind == "FlinkDeployment":
        return (doc["spec"].get("podTemplate") or {}).get("spec")
    return None


def workloads(
    docs: Sequence[Mapping[str, Any]],
    external_secrets: Mapping[tuple[str, str], str] | None = None,
    include_tests: bool = False,
    missing_secret: str | None = None,
) -> list[Workload]:
    """One :class:`Workload` per container of every Deployment, StatefulSet, Job, Pod and FlinkDeployment.

    ``external_secrets`` supplies Secrets the chart references but does not render (an
    existingSecret, a Strimzi KafkaUser's, CloudNativePG's ``<cluster>-app``). Test pods
    (``helm.sh/hook: test``) are left out unless ``include_tests``. A Secret key found in
    neither is ``None`` in ``env`` (and named in ``unresolved``), or ``missing_secret`` when
    given, so that the URLs built from it still expand.
    """
    secrets = {**secrets_of(docs), **(external_secrets or {})}
    config_maps: dict[tuple[str, str], str] = {}
    for d in docs:
        if d.get("kind") == "ConfigMap":
            for key, value in (d.get("data") or {}).items():
                config_maps[(d["metadata"]["name"], key)] = str(value)
    out: list[Workload] = []
    for d in docs:
        kind = d.get("kind")
        if kind not in WORKLOAD_KINDS:
            continue
        annotations = d["metadata"].get("annotations") or {}
        if not include_tests and annotations.get("helm.sh/hook") == "test":
            continue
        spec = pod_spec(d) or {}
        for c in spec.get("containers", []):
            ports = {p.get("name", str(p["containerPort"])): int(p["containerPort"]) for p in c.get("ports", [])}
            env, unresolved = resolve_env(c.get("env", []), secrets, config_maps, missing_secret)
            probes = {
                k: p
                for k in ("liveness", "readiness", "startup")
                if (p := _probe(k, c.get(f"{k}Probe"), ports)) is not None
            }
            command = c.get("command")
            args = list(c.get("args", []))
            image = c.get("image")
            if kind == "FlinkDeployment":
                # The operator runs Flink's entrypoint; the job's own arguments are spec.job.args.
                args = list(d["spec"]["job"].get("args", []))
                image = d["spec"].get("image")
            out.append(
                Workload(
                    name=d["metadata"]["name"],
                    kind=kind,
                    container=c["name"],
                    image=image,
                    command=[expand(str(x), env) for x in command] if command else None,
                    args=[expand(str(x), env) for x in args],
                    env=env,
                    ports=ports,
                    probes=probes,
                    unresolved=unresolved,
                    resources=c.get("resources") or {},
                    security_context=c.get("securityContext") or {},
                    pod_security_context=spec.get("securityContext") or {},
                    labels=dict(d["metadata"].get("labels") or {}),
                )
            )
    return out


def component(w: Workload) -> str | None:
    """The qaflow service a workload runs (its app.kubernetes.io/component label)."""
    return w.labels.get("app.kubernetes.io/component")
