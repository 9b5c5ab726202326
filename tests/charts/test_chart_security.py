"""Security posture of every workload in every value set: non-root, no privilege escalation,
no capabilities, RuntimeDefault seccomp, a read-only root filesystem with writable emptyDirs
where processes write, requests and limits, liveness and readiness probes, pinned images."""

from __future__ import annotations

from typing import Any

import pytest

from tests.charts.conftest import ALL_SETS, Renders
from tests.charts.render import pod_spec

pytestmark = pytest.mark.charts

# Flink's entrypoint writes its configuration and logs under /opt/flink: documented in
# charts/score-job/values.yaml (securityContext), the one exception to a read-only root.
WRITABLE_ROOT_OK = {"FlinkDeployment"}
# Workloads without probes: the helm test pod runs to completion; the Flink operator probes
# its own JobManager.
NO_PROBES_OK = {"FlinkDeployment", "Pod"}


def pod_objects(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if pod_spec(d) is not None]


def merged(pod: dict[str, Any], container: dict[str, Any], key: str) -> Any:
    """A securityContext field: the container's when set, else the pod's."""
    c = container.get("securityContext") or {}
    return c[key] if key in c else (pod.get("securityContext") or {}).get(key)


def posture_failures(doc: dict[str, Any]) -> list[str]:
    kind = doc["kind"]
    spec = pod_spec(doc)
    assert spec is not None
    failures: list[str] = []
    mounts_ok = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v or "persistentVolumeClaim" in v}
    templates = (
        {t["metadata"]["name"] for t in (doc["spec"].get("volumeClaimTemplates") or [])}
        if kind == "StatefulSet"
        else set()
    )
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        name = c["name"]
        if merged(spec, c, "runAsNonRoot") is not True:
            failures.append(f"{name}: runAsNonRoot is not true")
        uid = merged(spec, c, "runAsUser")
        if kind != "FlinkDeployment" and (not isinstance(uid, int) or uid == 0):
            failures.append(f"{name}: runAsUser must be a non-zero number (kubelet cannot check a named USER)")
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            failures.append(f"{name}: allowPrivilegeEscalation is not false")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            failures.append(f"{name}: capabilities do not drop ALL")
        if (sc.get("capabilities") or {}).get("add"):
            failures.append(f"{name}: adds capabilities")
        if sc.get("privileged"):
            failures.append(f"{name}: privileged")
        seccomp = (sc.get("seccompProfile") or (spec.get("securityContext") or {}).get("seccompProfile") or {}).get(
            "type"
        )
        if seccomp != "RuntimeDefault":
            failures.append(f"{name}: seccompProfile is not RuntimeDefault")
        if kind not in WRITABLE_ROOT_OK and sc.get("readOnlyRootFilesystem") is not True:
            failures.append(f"{name}: readOnlyRootFilesystem is not true")
        for m in c.get("volumeMounts", []):
            if m["name"] not in mounts_ok | templates:
                failures.append(f"{name}: mount {m['mountPath']} is not an emptyDir or a claim")
        if kind == "FlinkDeployment":
            continue  # the operator sets the Flink containers' resources from jobManager/taskManager
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in (res.get(part) or {}):
                    failures.append(f"{name}: resources.{part}.{r} not set")
        if kind not in NO_PROBES_OK:
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in c:
                    failures.append(f"{name}: no {probe}")
        image = str(c.get("image", ""))
        tag = image.rsplit("@", 1)[0].rsplit("/", 1)[-1].partition(":")[2]
        if "@sha256:" not in image and (not tag or tag == "latest"):
            failures.append(f"{name}: image {image!r} is not pinned (tag or digest)")
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        failures.append("uses host namespaces")
    if any("hostPath" in v for v in spec.get("volumes", [])):
        failures.append("mounts a hostPath")
    if kind != "FlinkDeployment" and spec.get("automountServiceAccountToken") is not False:
        failures.append("mounts a service account token it does not need")
    if kind == "FlinkDeployment":
        for role in ("jobManager", "taskManager"):
            resource = (doc["spec"].get(role) or {}).get("resource") or {}
            if not resource.get("memory") or not resource.get("cpu"):
                failures.append(f"{role}.resource needs memory and cpu")
    return failures


@pytest.mark.parametrize("value_set", ALL_SETS)
def test_every_workload_is_locked_down(renders: Renders, value_set: str) -> None:
    failures = [
        f"{d['kind']}/{d['metadata']['name']}: {f}"
        for d in pod_objects(renders[value_set])
        for f in posture_failures(d)
    ]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("value_set", ALL_SETS)
def test_writable_paths_are_volumes(renders: Renders, value_set: str) -> None:
    """Python services write /tmp (gunicorn heartbeats, caches) and the multiprocess metrics dir."""
    for d in pod_objects(renders[value_set]):
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") != "qaflow" or d["kind"] != "Deployment":
            continue
        labels = d["spec"]["template"]["metadata"]["labels"]
        if labels.get("app.kubernetes.io/component") == "kafka-ui":
            continue
        c = pod_spec(d)["containers"][0]  # type: ignore[index]
        paths = {m["mountPath"] for m in c.get("volumeMounts", [])}
        assert "/tmp" in paths, f"{d['metadata']['name']}: /tmp is not a volume"
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        if "PROMETHEUS_MULTIPROC_DIR" in env:
            assert env["PROMETHEUS_MULTIPROC_DIR"] in paths, f"{d['metadata']['name']}: multiprocess dir not mounted"


def test_the_posture_check_can_fail() -> None:
    bad = {
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x:latest"}]}}},
    }
    failures = posture_failures(bad)
    for expected in (
        "runAsNonRoot",
        "allowPrivilegeEscalation",
        "capabilities",
        "seccomp",
        "readOnlyRootFilesystem",
        "resources.limits.cpu",
        "livenessProbe",
        "not pinned",
        "service account token",
    ):
        assert any(expected in f for f in failures), expected
