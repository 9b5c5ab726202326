"""The chart, run locally: every workload's rendered command, args, env and probes, as processes.

The chart is rendered with external backends pointing at local Kafka, PostgreSQL and Redis.
Each Deployment's container command and environment is started as a local process (the
only changes: a free local port per workload instead of the pod's own, cluster Service
host names mapped to those ports, and emptyDir paths mapped to temporary directories).
The FlinkDeployment's job runs on a local MiniCluster with the rendered job arguments and
environment, and the helm test pod's script runs too: it submits a question and waits for
its terminal state. A renamed variable, a wrong command or a wrong probe path fails here.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

from qaflow.devstack.catalog import executable
from qaflow.devstack.kafka import KafkaServer
from tests.charts.render import REPO, Workload, component, render, workloads

pytestmark = [pytest.mark.charts, pytest.mark.e2e, pytest.mark.flink]

RELEASE = "local"
EMPTY_DIRS = ("/var/run/qaflow/prometheus",)
JOB_FILE_IN_IMAGE = "/opt/flink/usrlib/score_job.py"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def private_kafka(tmp_path: Path, require_servers) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A broker of its own: the chart's topic names are fixed, so they must not meet other tests'."""
    server = KafkaServer(tmp_path / "kafka", auto_create_topics=False)
    require_servers(server)
    server.start()
    yield server.bootstrap
    server.stop()


class Local:
    """Maps what a pod sees (its port, Service host names, emptyDirs) onto this machine."""

    def __init__(self, docs: list[dict], tmp: Path) -> None:
        self.tmp = tmp
        self.ports: dict[str, int] = {}  # workload name -> local port
        self.services: dict[str, tuple[str, int]] = {}  # "svc:port" -> workload name
        for d in docs:
            if d["kind"] == "Service":
                name = d["metadata"]["name"]
                for p in d["spec"]["ports"]:
                    # Services select their workload by the same name in this chart.
                    self.services[f"{name}:{p['port']}"] = name

    def port_of(self, w: Workload) -> int:
        return self.ports.setdefault(w.name, free_port())

    def rewrite(self, value: str) -> str:
        for hostport, target in self.services.items():
            host, port = hostport.split(":")
            pattern = rf"\b{re.escape(host)}(\.[a-z0-9.-]+)?:{port}\b"
            if re.search(pattern, value):
                value = re.sub(pattern, f"127.0.0.1:{self.ports.setdefault(target, free_port())}", value)
        for path in EMPTY_DIRS:
            if value == path:
                local = self.tmp / "emptydir" / path.strip("/").replace("/", "_")
                local.mkdir(parents=True, exist_ok=True)
                value = str(local)
        return value

    def env(self, w: Workload, port: int | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QAFLOW_")}
        for key, value in w.env.items():
            env[key] = self.rewrite(value) if value is not None else "1"  # resourceFieldRef (OMP_NUM_THREADS)
        if port is not None:
            # The pod's own port, here a free one: the container port the probes name.
            env["QAFLOW_HTTP_PORT"] = str(port)
        env["PYTHONUNBUFFERED"] = "1"
        return env


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{url}: process exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} not ready in {timeout} s:\n{log.read_text()[-3000:]}")


def test_rendered_workloads_run_and_answer(
    helm_bin: Path, private_kafka: str, postgres_server, redis_server, unique_name: str, tmp_path: Path
) -> None:
    from qaflow.flinkjob.runner import LocalJob, connector_jar

    db = f"qa_{unique_name}"
    postgres_server.create_database(db)
    pg = urlparse(postgres_server.url_for(db))
    redis = urlparse(redis_server.url)
    docs = render(
        "default",
        set_values={
            "global.kafka.mode": "external",
            "global.kafka.bootstrapServers": private_kafka,
            "global.postgres.mode": "external",
            "global.postgres.host": pg.hostname or "127.0.0.1",
            "global.postgres.port": pg.port or 5432,
            "global.postgres.database": db,
            "global.postgres.user": pg.username or "postgres",
            "global.postgres.auth.existingSecret": "local-pg",
            "global.redis.mode": "external",
            "global.redis.host": redis.hostname or "127.0.0.1",
            "global.redis.port": redis.port or 6379,
            "global.redis.db": 7,
        },
        release=RELEASE,
        helm_bin=helm_bin,
    )
    every = workloads(docs, external_secrets={("local-pg", "password"): "unused-trust-auth"}, include_tests=True)
    local = Local(docs, tmp_path)
    running = [w for w in every if w.kind == "Deployment" and next(
        d for d in docs if d["metadata"]["name"] == w.name and d["kind"] == "Deployment")["spec"].get("replicas", 1)]
    names = {component(w) for w in running}
    assert {"api", "llm-worker", "retry-worker", "storage-writer", "scorer", "dashboard"} <= names, names
    procs: list[subprocess.Popen[bytes]] = []
    logs: dict[str, Path] = {}
    try:
        for w in running:
            port = local.port_of(w)
            cmd = [executable(w.command[0]), *w.command[1:], *w.args] if w.command else pytest.fail(w.name)
            logs[w.name] = tmp_path / f"{w.name}.log"
            procs.append(start(cmd, local.env(w, port), logs[w.name]))
        for w, proc in zip(running, procs, strict=True):
            for probe in w.probes.values():
                assert probe.path, f"{w.name}: {probe.kind} probe has no HTTP path"
                wait_http(f"http://127.0.0.1:{local.port_of(w)}{probe.path}", proc, logs[w.name])

        [job] = [w for w in every if w.kind == "FlinkDeployment"]
        args = job.args
        assert args[:4] == ["-pyclientexec", args[1], "-py", JOB_FILE_IN_IMAGE], args
        flink = LocalJob(job_args=args[4:], workdir=tmp_path / "flink", jars=[connector_jar()],
                         env=local.env(job, None)).start()
        try:
            [test_pod] = [w for w in every if w.kind == "Pod"]
            assert test_pod.command and test_pod.command[0] == "python"
            env = local.env(test_pod, None)
            env["TIMEOUT_S"] = "240"
            proc = subprocess.run([executable("python"), *test_pod.command[1:], *test_pod.args], env=env,
                                  capture_output=True, text=True, timeout=300, check=False)
            assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        finally:
            flink.stop()
        stats = requests.get(f"http://127.0.0.1:{local.ports[f'{RELEASE}-qaflow-api']}/v1/stats", timeout=10).json()
        assert sum(stats["by_status"].values()) >= 1
        metrics = requests.get(f"http://127.0.0.1:{local.ports[f'{RELEASE}-qaflow-api']}/metrics", timeout=10)
        assert metrics.status_code == 200 and "qaflow" in metrics.text
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
