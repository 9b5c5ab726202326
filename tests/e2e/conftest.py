"""End-to-end fixtures: every service as a separate process, started from the catalog the way
its container starts it, on the session's Kafka (a topic prefix per test), a database per
test and a private Redis (the cache keys are question ids, shared by every run of the sample).
The services' log tails are printed when a test fails."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qaflow.devstack import RedisServer
from qaflow.devstack.catalog import FAKE_LLM, SERVICES, Backends, ServiceProcess, base_environment, environment
from qaflow.devstack.ports import free_port


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


class ServiceStack:
    """The processes of one test; stopped (and their logs shown on failure) at teardown."""

    def __init__(self, root: Path, backends: Backends) -> None:
        self.root = root
        self.backends = backends
        self.config: dict[str, str] = {}
        self.procs: dict[str, ServiceProcess] = {}
        self.timings: dict[str, float] = {}
        self.t0 = time.monotonic()

    def mark(self, what: str) -> float:
        self.timings[what] = round(time.monotonic() - self.t0, 1)
        return self.timings[what]

    def start_fake_llm(self, *knobs: str) -> ServiceProcess:
        port = free_port()
        proc = ServiceProcess(FAKE_LLM, base_environment(), self.root / "logs" / "fake-llm.log", port=port,
                              extra_args=("--port", str(port), *knobs)).start()
        self.procs["fake-llm"] = proc
        proc.wait_ready(30)
        return proc

    def start(self, name: str, *args: str, **env: str) -> ServiceProcess:
        spec = SERVICES[name]
        key = name if name not in self.procs else f"{name}-{len(self.procs)}"
        proc = ServiceProcess(
            spec,
            environment(spec, self.backends, port=free_port(), config={**self.config, **env},
                        multiproc_dir=self.root / "prometheus" / key),
            self.root / "logs" / f"{key}.log",
            extra_args=args,
        ).start()
        self.procs[key] = proc
        return proc

    def dump_logs(self, lines: int = 40) -> str:
        return "\n".join(p.tail(lines) for p in self.procs.values())

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop(grace_s=15)


@pytest.fixture
def private_redis(tmp_path: Path, require_servers: Any) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    require_servers(server)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stack(
    request: pytest.FixtureRequest, tmp_path: Path, kafka_bootstrap: str, pg_url: str, private_redis: RedisServer,
    unique_name: str,
) -> Iterator[ServiceStack]:
    s = ServiceStack(tmp_path, Backends(f"kafka://{kafka_bootstrap}", pg_url, private_redis.url, f"{unique_name}."))
    try:
        yield s
    finally:
        s.stop()
        failed = any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False) for w in ("setup", "call"))
        if failed:
            print("\n==== service logs (tails) ====\n" + s.dump_logs())
