"""The Dockerfiles reference files and modules that exist, start what the chart starts, run as
non-root from pinned bases; skaffold builds every image the chart uses and deploys it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts import dockerfile
from tests.charts.conftest import SKAFFOLD_SETS, Renders
from tests.charts.render import CHART, REPO, component, workloads

pytestmark = pytest.mark.charts

PYTHON_DOCKERFILE = REPO / "images" / "python" / "Dockerfile"
SCORE_JOB_DOCKERFILE = REPO / "images" / "score-job" / "Dockerfile"
SERVICES = ("api", "llm-worker", "retry-worker", "storage-writer", "scorer", "traffic-gen", "dashboard")
SKAFFOLD = REPO / "skaffold.yaml"
# The image's own layers may install dependencies only when the same RUN removes pip again.
PIP_REMOVED = re.compile(r"pip uninstall -y [^&]*\bpip\b")
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|build-essential|make|clang|cargo|rustc|python3-dev|libpq-dev)\b")


def contract() -> dict[str, Any]:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    return dict(values["global"]["contract"]["services"])


def skaffold() -> dict[str, Any]:
    return dict(yaml.safe_load(SKAFFOLD.read_text()))


def module_file(module: str) -> Path | None:
    """src/ path of a module (a package's __init__.py), or None when absent."""
    base = REPO / "src" / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def modules_started_by(command: list[str]) -> list[tuple[str, str | None]]:
    """(module, attribute it must define) for `python -m mod` and gunicorn's config and app."""
    out: list[tuple[str, str | None]] = []
    if command[:2] == ["python", "-m"]:
        mod = command[2]
        out.append((f"{mod}.__main__" if module_file(f"{mod}.__main__") or not module_file(mod) else mod, None))
    elif command and command[0] == "gunicorn":
        for i, arg in enumerate(command):
            if arg in ("--config", "-c") and command[i + 1].startswith("python:"):
                out.append((command[i + 1].removeprefix("python:"), None))
        app = command[-1]
        mod, _, attr = app.partition(":")
        out.append((mod, attr.split("(")[0] or "app"))
    return out


# --- the Python services' Dockerfile -------------------------------------------------------


def test_python_dockerfile_has_a_target_per_service() -> None:
    df = dockerfile.parse(PYTHON_DOCKERFILE)
    names = {s.name for s in df.stages}
    assert set(SERVICES) <= names, f"missing targets: {set(SERVICES) - names}"


@pytest.mark.parametrize("path", [PYTHON_DOCKERFILE, SCORE_JOB_DOCKERFILE], ids=["python", "score-job"])
def test_copy_sources_exist_and_are_in_the_context(path: Path) -> None:
    if not path.is_file():
        pytest.fail(f"{path.relative_to(REPO)} does not exist yet", pytrace=False)
    df = dockerfile.parse(path)
    ignore_file = path.with_name(path.name + ".dockerignore")
    patterns = ignore_file.read_text().splitlines() if ignore_file.is_file() else []
    problems = []
    for stage in df.stages:
        for instr in stage.all("COPY") + stage.all("ADD"):
            sources, _, flags = dockerfile.copy_sources(instr)
            if "from" in flags:
                continue
            for src in sources:
                if re.match(r"^https?://", src):
                    continue
                matches = list(REPO.glob(src)) if any(ch in src for ch in "*?[") else [REPO / src]
                if not any(m.exists() for m in matches):
                    problems.append(f"line {instr.line}: COPY source {src!r} does not exist in the repository")
                elif dockerfile.ignored(src.rstrip("/"), patterns):
                    problems.append(f"line {instr.line}: COPY source {src!r} is excluded by {ignore_file.name}")
    assert not problems, f"{path.relative_to(REPO)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("service", SERVICES)
def test_entrypoint_is_the_contract_command(service: str) -> None:
    df = dockerfile.parse(PYTHON_DOCKERFILE)
    entry = [i for s in df.lineage(service) for i in s.all("ENTRYPOINT")]
    assert entry, f"target {service} has no ENTRYPOINT"
    assert dockerfile.exec_form(entry[0].value) == contract()[service]["command"], (
        f"{service}: Dockerfile ENTRYPOINT and global.contract.services.{service}.command differ"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_entry_point_modules_exist(service: str) -> None:
    """The modules a service's command starts exist under src/ (and define the app factory)."""
    missing = []
    for module, attr in modules_started_by(contract()[service]["command"]):
        path = module_file(module)
        expected = "src/" + module.replace(".", "/") + ".py"
        if path is None:
            missing.append(f"service module missing: {module} (expected {expected})")
        elif attr and not re.search(rf"^(def|async def|class) {attr}\b|^{attr}\s*=", path.read_text(), re.M):
            missing.append(f"{module} ({path.relative_to(REPO)}) does not define {attr}")
    assert not missing, f"{service}: " + "; ".join(missing)


@pytest.mark.parametrize("path", [PYTHON_DOCKERFILE, SCORE_JOB_DOCKERFILE], ids=["python", "score-job"])
def test_base_images_are_pinned(path: Path) -> None:
    if not path.is_file():
        pytest.fail(f"{path.relative_to(REPO)} does not exist yet", pytrace=False)
    df = dockerfile.parse(path)
    stage_names = {s.name for s in df.stages}
    for s in df.stages:
        if s.base in stage_names:
            continue
        image = df.expand(s.base)
        name, _, tag = image.split("@")[0].rpartition(":")
        assert "@sha256:" in image or (name and tag and tag != "latest" and "/" not in tag), (
            f"{path.relative_to(REPO)}: FROM {image} is not pinned to a tag or digest"
        )


@pytest.mark.parametrize("service", SERVICES)
def test_service_images_run_as_non_root_without_build_tools(service: str) -> None:
    df = dockerfile.parse(PYTHON_DOCKERFILE)
    lineage = df.lineage(service)
    users = [i.value for s in lineage for i in s.all("USER")]
    assert users, f"{service}: no USER"
    uid = users[0].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, (
        f"{service}: USER {users[0]} (numeric, non-zero, so runAsNonRoot can check it)"
    )
    assert str(df.expand(lineage[-1].base)).startswith("python:3.11"), "Python 3.11 slim base"
    for s in lineage:
        for run in s.all("RUN"):
            assert not BUILD_TOOLS.search(run.value), f"{service}: build tools in runtime stage {s.name}: {run.value}"
            if "pip install" in run.value:
                assert PIP_REMOVED.search(run.value), (
                    f"{service}: stage {s.name} installs with pip and leaves pip in the image: {run.value}"
                )


def test_scorer_bakes_the_model_and_cpu_torch() -> None:
    df = dockerfile.parse(PYTHON_DOCKERFILE)
    lineage = df.lineage("scorer")
    runs = " ".join(i.value for s in lineage for i in s.all("RUN"))
    assert "bertscore,services" in runs and "download.pytorch.org/whl/cpu" in " ".join(
        i.value for s in lineage for i in s.all("ARG")
    )
    assert "packaged_model_dir" in runs, "the build checks the MiniLM model is in the image"
    env = " ".join(i.value for s in df.lineage("scorer") for i in s.all("ENV"))
    assert "HF_HUB_OFFLINE=1" in env


# --- the score job's image (images/score-job, written by another helper) -------------------


def test_score_job_image_matches_the_flink_deployment(renders: Renders) -> None:
    if not SCORE_JOB_DOCKERFILE.is_file():
        pytest.fail(
            "images/score-job/Dockerfile does not exist yet (the score-job image is built separately)", pytrace=False
        )
    text = SCORE_JOB_DOCKERFILE.read_text()
    flink = next(d for d in renders["default"] if d["kind"] == "FlinkDeployment")
    job = flink["spec"]["job"]
    jar = job["jarURI"].removeprefix("local://")
    version = re.search(r"flink-python-([\d.]+)\.jar", jar)
    assert version, jar
    df = dockerfile.parse(SCORE_JOB_DOCKERFILE)
    bases = " ".join(df.expand(s.base) for s in df.stages)
    assert f"flink:{version.group(1)}" in bases or version.group(1) in text, (
        f"the FlinkDeployment runs {jar}, but the image is not Flink {version.group(1)}"
    )
    pyclientexec = job["args"][job["args"].index("-pyclientexec") + 1]
    py = job["args"][job["args"].index("-py") + 1]
    assert pyclientexec == flink["spec"]["flinkConfiguration"]["python.executable"]
    venv = pyclientexec.rsplit("/bin/", 1)[0]
    assert pyclientexec in text or venv in text or (pyclientexec == "/usr/bin/python3" and "python3" in text), (
        f"-pyclientexec {pyclientexec} does not appear in images/score-job/Dockerfile (score-job.pythonExec)"
    )
    assert py.rsplit("/", 1)[0] in text, f"the image does not put anything in {py.rsplit('/', 1)[0]}"
    assert (REPO / "flink" / Path(py).name).is_file(), f"flink/{Path(py).name} does not exist"


# --- skaffold ------------------------------------------------------------------------------


def sanitise(image: str) -> str:
    return re.sub(r"[/\-.:]", "_", image)


def test_skaffold_builds_every_target() -> None:
    cfg = skaffold()
    assert cfg["apiVersion"] == "skaffold/v4beta14"
    artifacts = {a["image"]: a for a in cfg["build"]["artifacts"]}
    for service in SERVICES:
        a = artifacts.get(f"qaflow/{service}")
        assert a, f"no skaffold artifact for qaflow/{service}"
        assert a["docker"] == {"dockerfile": "images/python/Dockerfile", "target": service}
        assert a.get("context", ".") == "."
    assert artifacts["qaflow/score-job"]["docker"]["dockerfile"] == "images/score-job/Dockerfile"


@pytest.mark.parametrize("value_set", list(SKAFFOLD_SETS))
def test_skaffold_sets_every_image_the_chart_uses(renders: Renders, value_set: str) -> None:
    cfg = skaffold()
    release = cfg["deploy"]["helm"]["releases"][0]
    templates = release["setValueTemplates"]
    built = {a["image"] for a in cfg["build"]["artifacts"]}
    used: dict[str, str] = {}  # image repository -> chart component
    for w in workloads(renders[value_set], include_tests=True):
        repo = (w.image or "").rsplit(":", 1)[0]
        if repo.startswith("qaflow/"):
            used[repo] = component(w) or w.name
    assert used, "no qaflow images rendered"
    for repo, comp in used.items():
        assert repo in built, f"{comp} uses {repo}, which skaffold does not build"
        key = comp if comp != "test-submit" else "api"
        name = sanitise(repo)
        assert templates.get(f"{key}.image.repository") == f"{{{{.IMAGE_REPO_{name}}}}}", f"{key}.image.repository"
        assert templates.get(f"{key}.image.tag") == f"{{{{.IMAGE_TAG_{name}}}}}", f"{key}.image.tag"
    for image in built:
        assert f"{{{{.IMAGE_REPO_{sanitise(image)}}}}}" in templates.values(), f"{image} built but never deployed"


def test_skaffold_rewrites_flink_images_and_forwards_ports(renders: Renders) -> None:
    cfg = skaffold()
    allow = cfg["resourceSelector"]["allow"]
    assert {"groupKind": "FlinkDeployment.flink.apache.org", "image": [".*"]} in allow
    docs = renders["skaffold-kind"]
    ports = {d["metadata"]["name"]: {p["port"] for p in d["spec"]["ports"]} for d in docs if d["kind"] == "Service"}
    flink = next(d["metadata"]["name"] for d in docs if d["kind"] == "FlinkDeployment")
    ports[f"{flink}-rest"] = {8081}  # created by the Flink operator
    forwarded = {f["resourceName"] for f in cfg["portForward"]}
    assert {"qaflow-api", "qaflow-dashboard", "qaflow-score-job-rest", "qaflow-kafka-ui"} <= forwarded
    for f in cfg["portForward"]:
        assert f["resourceType"] == "service" and f["namespace"] == cfg["deploy"]["helm"]["releases"][0]["namespace"]
        assert f["port"] in ports.get(f["resourceName"], set()), f"no Service {f['resourceName']}:{f['port']}"


def test_skaffold_profiles_and_values_files() -> None:
    cfg = skaffold()
    release = cfg["deploy"]["helm"]["releases"][0]
    assert (REPO / release["chartPath"]).is_dir()
    for f in release["valuesFiles"]:
        assert (REPO / f).is_file(), f
    profiles = {p["name"]: p for p in cfg["profiles"]}
    assert profiles["kind"]["activation"] == [{"kubeContext": "kind-.*"}]
    assert profiles["minikube"]["activation"] == [{"kubeContext": "minikube"}]
    for p in profiles.values():
        for patch in p.get("patches", []):
            if patch["path"].endswith("valuesFiles/-"):
                assert (REPO / patch["value"]).is_file(), patch["value"]


def test_the_module_checks_can_fail() -> None:
    assert module_file("qaflow.services.no_such_service") is None
    assert modules_started_by(["python", "-m", "qaflow.services.no_such_service"]) == [
        ("qaflow.services.no_such_service.__main__", None)
    ]
    assert modules_started_by(["gunicorn", "--config", "python:a.conf", "a.app:create_app()"]) == [
        ("a.conf", None),
        ("a.app", "create_app"),
    ]
    assert dockerfile.ignored("tests/x.py", ["*", "!src/"])
    assert not dockerfile.ignored("src/qaflow/__init__.py", ["*", "!src/"])
