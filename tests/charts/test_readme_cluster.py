"""Every command of the README's Kubernetes section names something the repo really has."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests.charts.render import REPO, render

pytestmark = pytest.mark.charts


def readme_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    section = text.split("## On Kubernetes", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the README's Kubernetes section has no sh block"
    joined = block.group(1).replace("\\\n", " ")
    commands = [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]
    return [c for c in commands if c]  # comment-only lines say which terminal


@pytest.fixture(scope="module")
def release(helm_bin: Path) -> dict:
    """The release `skaffold dev` deploys on kind: skaffold.yaml's release, values and kind profile."""
    sk = yaml.safe_load((REPO / "skaffold.yaml").read_text())
    rel = sk["deploy"]["helm"]["releases"][0]
    kind = next(p for p in sk["profiles"] if p["name"] == "kind")
    files = [*rel["valuesFiles"], *(op["value"] for op in kind["patches"] if op["path"].endswith("valuesFiles/-"))]
    docs = render(values_files=[REPO / f for f in files], release=rel["name"], namespace=rel["namespace"],
                  kube_version="1.34.0", helm_bin=helm_bin)
    return {"name": rel["name"], "namespace": rel["namespace"], "docs": docs, "skaffold": sk}


def duration_s(text: str) -> float:
    """A Go duration as helm takes it (``10m``, ``1h30m``, ``90s``) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {text}"
    return sum(float(n) * units[u] for n, u in parts)


def objects(release: dict, kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in release["docs"] if d["kind"] == kind}


def test_every_readme_cluster_command_matches_the_rendered_release(release: dict) -> None:
    from qaflow.core.settings import ApiSettings, load
    from qaflow.services.api.openapi import document

    checked = 0
    for cmd in readme_commands():
        tool = cmd[0]
        if tool == "k8s-dev/bootstrap.sh":
            script = (REPO / tool).read_text()
            assert all(f"{flag})" in script for flag in cmd[1:]), cmd
        elif tool == "skaffold":
            assert cmd[1] in ("dev", "run") and any(p["name"] == "kind" for p in release["skaffold"]["profiles"])
        elif tool == "kubectl":
            assert cmd[1:3] == ["-n", release["namespace"]], cmd
            if cmd[3] == "port-forward":
                name = cmd[4].removeprefix("svc/")
                local, remote = map(int, cmd[5].split(":"))
                service = objects(release, "Service")[name]
                assert remote in [p["port"] for p in service["spec"]["ports"]], cmd
                forwards = {(f["resourceName"], f["port"], f["localPort"]) for f in release["skaffold"]["portForward"]}
                assert (name, remote, local) in forwards, f"skaffold does not forward {cmd}"
            elif cmd[3] == "scale":
                assert cmd[4].removeprefix("deploy/") in objects(release, "Deployment"), cmd
            else:
                pytest.fail(f"unchecked kubectl command {cmd}")
        elif tool == "curl":
            url = next(a for a in cmd if a.startswith("localhost:"))
            path = "/" + url.split("/", 1)[1]
            template = re.sub(r"/<id>$", "/{question_id}", path)
            paths = document(load(ApiSettings, {}))["paths"]
            assert template in paths or path in paths, (cmd, sorted(paths))
        elif tool == "helm":
            assert cmd[1:5] == ["test", release["name"], "-n", release["namespace"]], cmd
            pods = [d for d in release["docs"] if d["kind"] == "Pod"]
            tests = [p for p in pods if p["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
            assert tests
            # helm's default --timeout (5m) races the test pod's own wait: give helm more.
            assert cmd[5:6] == ["--timeout"], f"{cmd}: no --timeout"
            helm_s = duration_s(cmd[6])
            for pod in tests:
                env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0].get("env", [])}
                assert helm_s >= float(env["TIMEOUT_S"]) + 60, f"helm test --timeout {cmd[6]} <= the pod's {env}"
        elif tool == ".venv/bin/qaflow":
            assert cmd[1:3] == ["cluster", "status"], cmd
        else:
            pytest.fail(f"the README runs {tool!r}, which no test checks")
        checked += 1
    assert checked >= 10
