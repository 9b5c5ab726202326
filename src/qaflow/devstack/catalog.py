"""Every service as a local process: its command, local port and environment.

``qaflow dev up --services`` and the end-to-end tests start services from here, so a
process started locally gets the same command and the same ``QAFLOW_*`` variables as its
container. Which backend URLs each service gets comes from :mod:`qaflow.core.topology`
(the one declaration of the wiring; the chart's ``global.contract.services`` is checked
against it by ``tests/charts/test_chart_topology.py``). Only the port differs: each service
gets its own locally, where in the cluster each pod has 9100.

:class:`ServiceProcess` runs one entry: spawn with a log file, wait for ``/readyz``, stop
with SIGTERM (then SIGKILL), or kill outright.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qaflow.core import topology
from qaflow.core.settings import for_service
from qaflow.core.topology import Stage
from qaflow.devstack.process import terminate

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    command: tuple[str, ...]
    port: int  # local default of QAFLOW_HTTP_PORT
    backends: tuple[str, ...] = ()  # which of bus, store, cache it is given
    env: Mapping[str, str] = field(default_factory=dict)  # fixed extra variables
    multiproc: bool = False  # gunicorn: prometheus_client multiprocess directory
    job: bool = False  # runs to completion (no /readyz to wait for)
    ready_path: str = "/readyz"

    @classmethod
    def of(cls, stage: Stage, command: tuple[str, ...], port: int, **kwargs: Any) -> ServiceSpec:
        """The process of ``stage``: its name and backend URLs from the topology."""
        return cls(stage.service, command, port, stage.url_backends, **kwargs)


def _gunicorn(app: str) -> tuple[str, ...]:
    conf, factory = f"python:qaflow.services.{app}.gunicorn_conf", f"qaflow.services.{app}.app:create_app()"
    return ("gunicorn", "--config", conf, factory)


def _module(stage: Stage) -> tuple[str, ...]:
    """``python -m qaflow.services.<service>``: the service name with ``_`` for ``-``."""
    return ("python", "-m", f"qaflow.services.{stage.service.replace('-', '_')}")


SERVICES: dict[str, ServiceSpec] = {
    s.name: s
    for s in (
        ServiceSpec.of(topology.API, _gunicorn("api"), 8000, multiproc=True),
        ServiceSpec.of(topology.SCORER, _gunicorn("scorer"), 8001, multiproc=True),
        ServiceSpec.of(topology.DASHBOARD, _gunicorn("dashboard"), 8002, multiproc=True),
        ServiceSpec.of(topology.ANSWER, _module(topology.ANSWER), 9101),
        ServiceSpec.of(topology.RETRY, _module(topology.RETRY), 9102),
        ServiceSpec.of(topology.SCORE, _module(topology.SCORE), 9103),
        ServiceSpec.of(topology.STORAGE, _module(topology.STORAGE), 9104),
        ServiceSpec.of(topology.TRAFFIC_GEN, _module(topology.TRAFFIC_GEN), 9105, job=True),
    )
}
# The loop without the PyFlink job: the score-worker stands in for the score-job.
PIPELINE = tuple(s.service for s in (topology.API, topology.ANSWER, topology.RETRY, topology.SCORE, topology.STORAGE))
# Not a qaflow service: the fake LLM (a simulator) for local runs; knobs go in extra arguments.
FAKE_LLM = ServiceSpec("fake-llm", ("qaflow", "fake-llm", "serve"), 8099, ready_path="/_stats")


@dataclass(frozen=True, slots=True)
class Backends:
    bus_url: str
    store_url: str
    cache_url: str
    topic_prefix: str = ""


def executable(name: str) -> str:
    """``python`` is this interpreter; other commands come from its bin directory, else PATH."""
    if name == "python":
        return sys.executable
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    return shutil.which(name) or name


def argv(spec: ServiceSpec, extra: Iterable[str] = ()) -> list[str]:
    return [executable(spec.command[0]), *spec.command[1:], *extra]


def base_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any ``QAFLOW_*`` variable (a service refuses unknown ones)."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if not k.upper().startswith("QAFLOW_")}


def environment(
    spec: ServiceSpec,
    backends: Backends,
    *,
    port: int | None = None,
    config: Mapping[str, str] | None = None,
    multiproc_dir: Path | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The variables ``spec``'s container gets: backends, port, shared config, then its own."""
    env = base_environment(base)
    env["QAFLOW_HTTP_PORT"] = str(port or spec.port)
    if "bus" in spec.backends:
        env["QAFLOW_BUS_URL"] = backends.bus_url
        if backends.topic_prefix:
            env["QAFLOW_TOPIC_PREFIX"] = backends.topic_prefix
    if "store" in spec.backends:
        env["QAFLOW_STORE_URL"] = backends.store_url
    if "cache" in spec.backends:
        env["QAFLOW_CACHE_URL"] = backends.cache_url
    env.update(config or {})
    env.update(spec.env)
    if spec.multiproc and multiproc_dir is not None:
        env[MULTIPROC_ENV] = str(multiproc_dir)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class ServiceProcess:
    """One service as a child process, logging to ``log_path``."""

    def __init__(
        self,
        spec: ServiceSpec,
        env: Mapping[str, str],
        log_path: Path,
        *,
        extra_args: Iterable[str] = (),
        detached: bool = False,
        cwd: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.env = for_service(env, spec.name)  # a service refuses variables only other services read
        self.port = port or int(self.env.get("QAFLOW_HTTP_PORT", spec.port))
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.detached = detached
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> ServiceProcess:
        from qaflow.devstack.pids import die_with_parent

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.spec.multiproc and MULTIPROC_ENV in self.env:
            Path(self.env[MULTIPROC_ENV]).mkdir(parents=True, exist_ok=True)
        cmd = argv(self.spec, self.extra_args)
        logger.info("starting %s: %s", self.name, " ".join(cmd))
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts + 1}: {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log if not self.spec.job else subprocess.PIPE,
                stderr=log,
                start_new_session=self.detached,
                preexec_fn=None if self.detached else die_with_parent,
            )
        self.starts += 1
        return self

    def wait_ready(self, timeout_s: float = 60.0, path: str | None = None) -> None:
        """Return once ``path`` answers 200 from this process's own port; raise with the log's tail if the
        process exits or time runs out. Another process answering on the port does not count."""
        import requests

        from qaflow.devstack.owners import listener_pids

        path = path or self.spec.ready_path
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            if not self.running():
                code = None if self.proc is None else self.proc.returncode
                msg = f"{self.name} exited with code {code} before it was ready\n{self.tail()}"
                raise RuntimeError(msg)
            try:
                r = requests.get(self.url + path, timeout=2)
            except requests.RequestException as exc:
                last = type(exc).__name__
            else:
                if r.status_code == 200 and self.owns_port():
                    return
                last = f"HTTP {r.status_code}: {r.text[:200]}" if r.status_code != 200 else (
                    f"port {self.port} answered, but by pid {sorted(listener_pids(self.port))}, not ours")
            time.sleep(0.25)
        msg = f"{self.name} not ready on {self.url}{path} after {timeout_s:.0f} s ({last})\n{self.tail()}"
        raise RuntimeError(msg)

    def owns_port(self) -> bool:
        """True when this process (or a child: gunicorn's workers) listens on its port."""
        from qaflow.devstack.owners import owns_port

        return self.proc is not None and owns_port(self.proc.pid, self.port)

    def stop(self, grace_s: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace_s``. Returns the exit code."""
        proc = self.proc
        if proc is None:
            return None
        terminate(proc, self.name, grace_s)
        self._close_pipes(proc)
        return proc.returncode

    def output(self, timeout_s: float) -> tuple[int, str]:
        """For a job: wait for it to end; its exit code and standard output."""
        assert self.proc is not None, "start() first"
        try:
            out, _ = self.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        return self.proc.returncode, out.decode("utf-8", "replace") if out else ""

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to finish or commit anything."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
            self._close_pipes(proc)

    @staticmethod
    def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return f"(no log at {self.log_path})"
        return "\n".join(f"  {self.name} | {line}" for line in text[-lines:])

    def detach(self) -> dict[str, Any]:
        """Let go of a detached process that should outlive this one; returns :meth:`state`."""
        import warnings

        state = self.state()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)  # Popen warns when dropped while its child runs
            self.proc = None
        return state

    def state(self) -> dict[str, Any]:
        from qaflow.devstack.pids import start_time

        assert self.proc is not None
        return {
            "pid": self.proc.pid,
            "start_time": start_time(self.proc.pid),
            "port": self.port,
            "url": self.url,
            "log": str(self.log_path),
        }
