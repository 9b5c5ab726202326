"""The rendered chart, run as containers: every Deployment from its own image, with the chart's
securityContext, volumes, env and Secrets, passing its readiness probe; the helm test pod passes.

charts/qaflow/ci/containers-values.yaml, played by ``podman kube play`` (tests/containers/podman.py
says what podman needs changed: ports and Service names on the host network).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.containers import podman
from tests.containers.conftest import SERVICES, Stack

pytestmark = [pytest.mark.containers]

STARTED = ("api", "scorer", "dashboard", "llm-worker", "retry-worker", "storage-writer")


def test_every_image_starts_its_service_by_its_own_entry_point(containers: Path) -> None:
    """The image's ENTRYPOINT is the chart's command, and the image runs as 10001."""
    from tests.charts.test_images import contract

    services = contract()
    wrong = []
    for name in podman.PYTHON_IMAGES:
        config = podman.inspect("image", podman.image_ref(name))["Config"]
        if config.get("Entrypoint") != services[name]["command"]:
            wrong.append(f"{name}: ENTRYPOINT {config.get('Entrypoint')} != chart command {services[name]['command']}")
        if config.get("User", "").split(":")[0] != "10001":
            wrong.append(f"{name}: USER {config.get('User')!r}")
    assert not wrong, "\n".join(wrong)


PROBE = """
import importlib.metadata, importlib.util, pathlib
print(importlib.metadata.version("qaflow"), importlib.util.find_spec("pip") is not None,
      pathlib.Path("/opt/venv/bin/qaflow").read_text().splitlines()[0])
"""


def test_the_python_images_hold_qaflow_installed_and_no_pip(containers: Path) -> None:
    """build-app's /app, copied over the deps venv, is an installed qaflow (metadata and the
    console script with the venv's interpreter), and no layer left pip behind."""
    version = tomllib.loads((podman.REPO / "pyproject.toml").read_text())["project"]["version"]
    wrong = []
    for name in podman.PYTHON_IMAGES:
        out = podman.podman("run", "--rm", "--entrypoint", "python", podman.image_ref(name), "-c", PROBE).split()
        if out != [version, "False", "#!/opt/venv/bin/python"]:
            wrong.append(f"{name}: version, pip present, qaflow script shebang = {out}")
    assert not wrong, "\n".join(wrong)


def test_every_deployment_runs_from_its_image_with_the_charts_security(stack: Stack) -> None:
    components = {d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] for d in stack.played}
    assert set(STARTED) <= components, components
    problems = []
    for d in stack.played:
        component = d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        spec = d["spec"]["template"]["spec"]
        [c] = spec["containers"]
        info = podman.inspect("container", stack.container(component))
        where = f"{component} ({info['Name']})"
        if info["ImageName"] != podman.image_ref(component) or c["image"] != podman.image_ref(component):
            problems.append(f"{where}: image {info['ImageName']}, chart {c['image']}")
        if info["State"]["Status"] != "running":
            problems.append(f"{where}: {info['State']['Status']}")
        host = info["HostConfig"]
        if not host.get("ReadonlyRootfs"):
            problems.append(f"{where}: root filesystem writable")
        if host.get("CapAdd") or info.get("EffectiveCaps"):
            problems.append(f"{where}: capabilities {info.get('EffectiveCaps')}")
        if "no-new-privileges" not in " ".join(host.get("SecurityOpt") or []):
            problems.append(f"{where}: allowPrivilegeEscalation not honoured ({host.get('SecurityOpt')})")
        user = podman.podman("exec", info["Name"], "id", "-u").strip()
        if user != str(spec["securityContext"]["runAsUser"]):
            problems.append(f"{where}: runs as {user}")
        # Read-only root: writing anywhere but the chart's volumes fails.
        denied = podman.podman("exec", info["Name"], "sh", "-c", "touch /home/qaflow/x 2>&1 || echo denied")
        if "denied" not in denied and "Read-only" not in denied:
            problems.append(f"{where}: wrote under the read-only root")
        mounts = {m["Destination"] for m in info["Mounts"]}
        for vm in c.get("volumeMounts", []):
            if vm["mountPath"] not in mounts:
                problems.append(f"{where}: volume {vm['name']} not at {vm['mountPath']}")
        podman.podman("exec", info["Name"], "sh", "-c", "touch /tmp/.w && rm /tmp/.w")
        # Env, with the Secret's password where the chart puts it (secretKeyRef).
        env = dict(e.split("=", 1) for e in info["Config"]["Env"])
        for e in c["env"]:
            if "value" in e and "$(" not in str(e["value"]) and env.get(e["name"]) != str(e["value"]):
                problems.append(f"{where}: {e['name']}={env.get(e['name'])!r}, chart {e['value']!r}")
            if "secretKeyRef" in (e.get("valueFrom") or {}):
                got = podman.podman("exec", info["Name"], "printenv", e["name"]).strip()
                if not got:
                    problems.append(f"{where}: {e['name']} (secretKeyRef) is empty")
    assert not problems, "\n".join(problems)


def test_every_deployment_passes_its_readiness_probe(stack: Stack) -> None:
    """Probed again from the host by the chart's probe path and port, after the stack settled."""
    for d in stack.played:
        component = d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        [c] = d["spec"]["template"]["spec"]["containers"]
        for key in ("readinessProbe", "livenessProbe"):
            probe = c[key]["httpGet"]
            podman.wait_http(f"http://127.0.0.1:{probe['port']}{probe['path']}", stack.container(component), timeout=30)
    print("seconds to ready after kube play:", {k: round(v, 1) for k, v in stack.ready_s.items()})


def test_services_are_all_in_the_contract() -> None:
    from tests.charts.test_images import SERVICES as IMAGE_SERVICES

    assert set(SERVICES) == set(IMAGE_SERVICES)


def test_the_web_services_serve_their_pages_from_the_image(stack: Stack) -> None:
    """What the images carry besides code (the dashboard's template, the api's OpenAPI
    document) is there: a file the dockerignore leaves out fails here."""
    import requests

    page = requests.get(stack.url("dashboard") + "/", timeout=30)
    assert page.status_code == 200 and "<html" in page.text.lower(), (page.status_code, page.text[:300])
    spec = requests.get(stack.url("api") + "/openapi.json", timeout=30)
    assert spec.status_code == 200 and "/v1/questions" in spec.json()["paths"]
