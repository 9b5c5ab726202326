"""The container tests' fixtures: podman, the images, and the chart played as containers.

Without podman the tests skip, except under CI (``CI`` set) or ``QAFLOW_REQUIRE_SERVERS=1``,
where they fail. The images are (re)built once per session by scripts/images/all.sh (what
``make images`` runs; with nothing changed it only checks the layer cache), unless
``QAFLOW_CONTAINERS_BUILD=0``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from qaflow.devstack.kafka import KafkaServer
from tests.charts.render import find_helm, render
from tests.conftest import _servers_required
from tests.containers import podman
from tests.containers.flink import FlinkApplication

PG_PASSWORD = "unused-trust-auth"  # the session's PostgreSQL trusts local connections


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def containers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """podman is here and every image is built; the build log's path."""
    reason = podman.available()
    if reason is None and find_helm() is None:
        reason = "helm not found: run scripts/install-helm.sh (make deps)"
    if reason is not None:
        if _servers_required():
            pytest.fail(f"{reason} (required under CI / QAFLOW_REQUIRE_SERVERS=1)", pytrace=False)
        pytest.skip(reason)
    log = tmp_path_factory.mktemp("images") / "build.log"
    if os.environ.get("QAFLOW_CONTAINERS_BUILD", "1") != "0":
        podman.build_images(log)
    missing = [podman.image_ref(name) for name in podman.IMAGES if not podman.image_exists(podman.image_ref(name))]
    assert not missing, f"images missing (make images): {missing}"
    return log


@pytest.fixture(scope="session")
def private_kafka(tmp_path_factory: pytest.TempPathFactory, require_servers) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A broker of its own: the chart's topic names are fixed, so they must not meet other tests'."""
    server = KafkaServer(tmp_path_factory.mktemp("kafka"), auto_create_topics=False)
    require_servers(server)
    server.start()
    yield server.bootstrap
    server.stop()


@dataclass
class Stack:
    """The chart's workloads running as podman pods."""

    release: str
    docs: list[dict[str, Any]]
    played: list[dict[str, Any]]
    ports: dict[str, int]  # service (chart component) -> its port on 127.0.0.1
    kafka: str
    pg_url: str
    redis_url: str
    manifest: Path
    ready_s: dict[str, float] = field(default_factory=dict)  # Deployment -> seconds to ready after play

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def deployment(self, component: str) -> dict[str, Any]:
        return next(d for d in self.played if d["kind"] == "Deployment" and d["metadata"]["name"].endswith(component))

    def container(self, component: str) -> str:
        d = self.deployment(component)
        name = d["spec"]["template"]["spec"]["containers"][0]["name"]
        return podman.container_name(d, name)


SERVICES = ("api", "scorer", "dashboard", "llm-worker", "retry-worker", "storage-writer", "traffic-gen")


def render_for_containers(
    release: str, kafka: str, pg_url: str, redis_url: str, secret: str, ports: dict[str, int], extra: dict[str, Any]
) -> list[dict[str, Any]]:
    pg = urlparse(pg_url)
    redis = urlparse(redis_url)
    sets: dict[str, Any] = {
        "global.kafka.bootstrapServers": kafka,
        "global.postgres.host": pg.hostname or "127.0.0.1",
        "global.postgres.port": pg.port or 5432,
        "global.postgres.database": pg.path.lstrip("/"),
        "global.postgres.user": pg.username or "postgres",
        "global.postgres.auth.existingSecret": secret,
        "global.redis.host": redis.hostname or "127.0.0.1",
        "global.redis.port": redis.port or 6379,
        "global.redis.db": 5,
    }
    for service, port in ports.items():
        sets[f"global.contract.services.{service}.port"] = port
    sets.update(extra)
    return render("containers", set_values=sets, release=release)


@pytest.fixture(scope="session")
def fake_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The fake LLM (``qaflow fake-llm serve``, OpenAI's API) on the host; its URL."""
    from qaflow.devstack.catalog import FAKE_LLM, ServiceProcess, base_environment

    port = free_port()
    proc = ServiceProcess(FAKE_LLM, base_environment(), tmp_path_factory.mktemp("fake-llm") / "fake-llm.log",
                          port=port, extra_args=("--port", str(port), "--latency-ms", "30", "--rate-429", "0.05",
                                                 "--retry-after-s", "1", "--seed", "7")).start()
    proc.wait_ready(30)
    yield proc.url
    proc.stop()


@pytest.fixture(scope="session")
def stack(
    containers: Path,
    private_kafka: str,
    fake_llm: str,
    postgres_server,  # type: ignore[no-untyped-def]
    redis_server,  # type: ignore[no-untyped-def]
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Render with charts/qaflow/ci/containers-values.yaml, play every Deployment, wait until ready."""
    release = f"ct{uuid.uuid4().hex[:6]}"
    db = f"qa_{release}"
    pg_url = postgres_server.create_database(db)
    secret = f"{release}-pg"
    podman.create_secret(secret, {"password": PG_PASSWORD})
    ports = {s: free_port() for s in SERVICES}
    extra = {
        # The llm-worker container asks the fake LLM on the host (OpenAI's API).
        "llm-worker.env.QAFLOW_LLM_PROVIDER": "openai",
        "llm-worker.env.QAFLOW_LLM_BASE_URL": fake_llm,
        "llm-worker.env.QAFLOW_RETRY_AFTER_CAP_S": "0.3",
        "global.config.QAFLOW_MAX_GENERATIONS": "2",
    }
    docs = render_for_containers(release, private_kafka, pg_url, redis_server.url, secret, ports, extra)
    services = [d["metadata"]["name"] for d in docs if d["kind"] == "Service"]
    deployments = [d for d in podman.playable(docs, services) if d["kind"] == "Deployment"]
    manifest = tmp_path_factory.mktemp("kube") / f"{release}.yaml"
    s = Stack(release, docs, deployments, ports, private_kafka, pg_url, redis_server.url, manifest)
    try:
        start = time.monotonic()
        podman.play(deployments, manifest)
        for d in deployments:
            component = d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
            c = d["spec"]["template"]["spec"]["containers"][0]
            path = c["readinessProbe"]["httpGet"]["path"]
            port = c["readinessProbe"]["httpGet"]["port"]
            podman.wait_http(f"http://127.0.0.1:{port}{path}", s.container(component))
            s.ready_s[component] = time.monotonic() - start
        yield s
    finally:
        podman.down(manifest, deployments)
        podman.podman("secret", "rm", secret, check=False)
        postgres_server.drop_database(db)


@dataclass
class ScoreJob:
    app: FlinkApplication
    job_id: str
    running_after_s: float
    peak: dict[str, int] = field(default_factory=dict)  # container -> highest memory use seen (bytes)


@pytest.fixture(scope="session")
def score_job(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScoreJob]:
    """The FlinkDeployment as JobManager + TaskManager containers from the score-job image; a
    sampler records each container's memory every second (for the JobManager's size)."""
    [deployment] = [d for d in stack.docs if d["kind"] == "FlinkDeployment"]
    services = [d["metadata"]["name"] for d in stack.docs if d["kind"] == "Service"]
    app = FlinkApplication(f"{stack.release}-score-job", deployment, tmp_path_factory.mktemp("flink-data"), services)
    start = time.monotonic()
    stop = threading.Event()
    job = ScoreJob(app, "", 0.0)

    def sample() -> None:
        while not stop.wait(1.0):
            for name in list(app.started):
                try:
                    used = app.memory_usage(name)
                except (podman.PodmanError, ValueError, IndexError, KeyError):
                    continue
                job.peak[name] = max(job.peak.get(name, 0), used)

    sampler = threading.Thread(target=sample, name="memory-sampler", daemon=True)
    try:
        app.start()
        sampler.start()
        job.job_id = app.wait_running()
        job.running_after_s = time.monotonic() - start
        yield job
    finally:
        stop.set()
        if sampler.is_alive():
            sampler.join(timeout=10)
        peaks = {k: f"{v / 2**20:.0f} MiB" for k, v in job.peak.items()}
        print(f"\nscore job: running after {job.running_after_s:.0f} s; memory peaks {peaks}")
        app.stop()
