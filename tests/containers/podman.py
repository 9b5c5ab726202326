"""podman, as the container tests use it: build, play rendered manifests, inspect, clean up.

Everything runs with the project's containers.conf (scripts/images/containers.conf: runc,
cgroupfs, ulimits below the machine's hard limits, host networking). Only podman 4.3.1's
behaviour (Debian bookworm) is assumed; where it differs from a cluster, :func:`playable`
says what is changed and why.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts" / "images"
CONTAINERS_CONF = SCRIPTS / "containers.conf"
IMAGE_TAG = os.environ.get("QAFLOW_IMAGE_TAG", "local")
PYTHON_IMAGES = ("api", "llm-worker", "retry-worker", "storage-writer", "scorer", "traffic-gen", "dashboard")
IMAGES = (*PYTHON_IMAGES, "score-job")


class PodmanError(RuntimeError):
    """A podman command failed; the message holds its output."""


def env() -> dict[str, str]:
    out = dict(os.environ)
    out.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return out


def available() -> str | None:
    """None when podman and runc can run containers here, else why not."""
    for tool in ("podman", "runc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make images installs podman, runc and debootstrap)"
    return None


def podman(*args: str, timeout: float = 300, check: bool = True, input_: str | None = None) -> str:
    proc = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, env=env(), input=input_, check=False
    )
    if check and proc.returncode != 0:
        msg = f"podman {' '.join(args)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}"
        raise PodmanError(msg)
    return proc.stdout


def image_ref(name: str) -> str:
    return f"localhost/qaflow/{name}:{IMAGE_TAG}"


def image_exists(ref: str) -> bool:
    return subprocess.run(["podman", "image", "exists", ref], env=env(), check=False).returncode == 0


def inspect(kind: str, name: str) -> dict[str, Any]:
    data = json.loads(podman(kind, "inspect", name))
    return dict(data[0])


def build_images(log: Path) -> None:
    """``scripts/images/all.sh`` (what ``make images`` runs): up to date when nothing changed."""
    with log.open("wb") as out:
        proc = subprocess.run(
            ["bash", str(SCRIPTS / "all.sh")],
            stdout=out, stderr=subprocess.STDOUT, env=env(), timeout=3600, check=False,
        )
    if proc.returncode != 0:
        msg = f"scripts/images/all.sh failed ({proc.returncode}):\n{log.read_text()[-4000:]}"
        raise PodmanError(msg)


# --- from a rendered chart to what `podman kube play` runs -----------------------------------

PLAYED_KINDS = {"Deployment", "Pod"}


def playable(docs: Iterable[Mapping[str, Any]], service_hosts: Sequence[str]) -> list[dict[str, Any]]:
    """The Deployments and Pods of a render, as podman 4.3.1 plays them on the host network.

    Changed, and nothing else (each is a podman limitation, not a chart property):
    - container ``ports`` are dropped and named probe ports made numeric: with
      ``hostNetwork`` podman refuses any port mapping ("PortMappings can only be used with
      Bridge or slirp4netns networking");
    - Service host names in env values (``http://<release>-qaflow-api:<port>``) become
      127.0.0.1, as cluster DNS would resolve them to the Service (each service has its own
      port on the host, so ``127.0.0.1:<port>`` reaches it). podman 4.3.1 ignores
      ``hostAliases`` on the host network and ``kube play`` has no ``--add-host``;
    - Deployments at 0 replicas are left out (kube play would start one).
    Secrets are not played (4.3.1 stores them in a form ``secretKeyRef`` cannot read): see
    :func:`create_secret`.
    """
    out: list[dict[str, Any]] = []
    for d in docs:
        if d.get("kind") not in PLAYED_KINDS:
            continue
        doc = copy.deepcopy(dict(d))
        if doc["kind"] == "Deployment":
            if doc["spec"].get("replicas", 1) == 0:
                continue
            doc["spec"]["replicas"] = 1
            spec = doc["spec"]["template"]["spec"]
        else:
            spec = doc["spec"]
        assert spec.get("hostNetwork"), f"{doc['metadata']['name']}: not on the host network"
        for c in spec.get("containers", []):
            for e in c.get("env", []):
                if "value" in e:
                    e["value"] = to_loopback(str(e["value"]), service_hosts)
            named = {p["name"]: p["containerPort"] for p in c.pop("ports", []) if "name" in p}
            for key in ("livenessProbe", "readinessProbe", "startupProbe"):
                probe = c.get(key) or {}
                for handler in ("httpGet", "tcpSocket"):
                    if handler in probe and isinstance(probe[handler].get("port"), str):
                        probe[handler]["port"] = named[probe[handler]["port"]]
        out.append(doc)
    return out


def to_loopback(value: str, hosts: Sequence[str]) -> str:
    """``http://svc:8000`` or ``svc.ns.svc:8000`` -> ``http://127.0.0.1:8000`` for each Service name."""
    for host in hosts:
        value = re.sub(rf"(?<![\w.-]){re.escape(host)}(\.[a-z0-9.-]+)?(?=:\d)", "127.0.0.1", value)
    return value


def create_secret(name: str, data: Mapping[str, str]) -> None:
    """A Secret as podman 4.3.1 reads it for ``secretKeyRef``: flat JSON of its base64 ``data``."""
    payload = json.dumps({k: base64.b64encode(v.encode()).decode() for k, v in data.items()})
    podman("secret", "create", name, "-", input_=payload)


def play(docs: Sequence[Mapping[str, Any]], path: Path) -> None:
    path.write_text(yaml.safe_dump_all(list(docs), sort_keys=False))
    podman("kube", "play", str(path), timeout=600)


def pod_name(doc: Mapping[str, Any]) -> str:
    """The pod ``kube play`` (4.3.1) makes for a Deployment (``<name>-pod-0``) or a Pod (``<name>``)."""
    name = str(doc["metadata"]["name"])
    return f"{name}-pod-0" if doc["kind"] == "Deployment" else name


def down(path: Path, docs: Sequence[Mapping[str, Any]] = ()) -> None:
    """``kube down`` of what ``play`` started, then any of its pods left (by name, ours only)."""
    if path.is_file():
        podman("kube", "down", str(path), timeout=300, check=False)
    for doc in docs:
        podman("pod", "rm", "-f", "-t", "10", pod_name(doc), timeout=120, check=False)


def containers_of(pod: str) -> list[dict[str, Any]]:
    """``podman ps`` rows of a pod's containers (infra container left out)."""
    rows = json.loads(podman("ps", "-a", "--pod", "--filter", f"pod={pod}", "--format", "json"))
    return [r for r in rows if not r.get("IsInfra")]


def container_name(doc: Mapping[str, Any], container: str) -> str:
    """kube play (4.3.1) names a Deployment's pod ``<name>-pod-0``, a Pod's ``<name>``, and each
    container ``<pod>-<container>``."""
    return f"{pod_name(doc)}-{container}"


def logs(container: str, tail: int = 80) -> str:
    return podman("logs", "--tail", str(tail), container, check=False, timeout=60)


def wait_http(url: str, container: str, timeout: float = 240.0) -> float:
    """Seconds until ``url`` answers 200 (a readiness probe from outside); fails with the logs."""
    start = time.monotonic()
    deadline = start + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            resp = requests.get(url, timeout=3)
            if resp.status_code == 200:
                return time.monotonic() - start
            last = f"HTTP {resp.status_code}: {resp.text[:200]}"
        except requests.RequestException as exc:
            last = str(exc)
        state = inspect("container", container)["State"]
        if state.get("Status") == "exited" and state.get("ExitCode", 0) != 0 and not state.get("Restarting"):
            last = f"exited {state.get('ExitCode')}"
        time.sleep(1)
    msg = f"{url} ({container}) not ready in {timeout:.0f} s ({last}):\n{logs(container)}"
    raise AssertionError(msg)
