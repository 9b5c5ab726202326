"""The score job from the score-job image, in Flink application mode, as the operator runs it:
one JobManager container (the PythonDriver builds and submits the job there) and one
TaskManager container, from the rendered FlinkDeployment.

From the FlinkDeployment, unchanged: the image, ``job.jarURI``, ``job.entryClass``,
``job.args`` (``-pyclientexec``, ``-py`` and the job's own), ``job.parallelism``, every
``flinkConfiguration`` key, the JobManager's and TaskManager's memory, the main container's env
and securityContext, and the state volume at its mount path. What the operator would do with
the Kubernetes API is done for one host instead:
- the standalone application entry point (``standalone-job``, the image's entrypoint command)
  instead of ``kubernetes-application``, with the jar URI as ``--jars``;
- ``high-availability.type: NONE`` (kubernetes HA needs the API server);
- addresses and ports on 127.0.0.1, free ones (the host network is shared);
- Service names in env (``qaflow-scorer``) mapped to 127.0.0.1 by ``--add-host``.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.containers import podman


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class FlinkApplication:
    name: str  # container name prefix
    deployment: Mapping[str, Any]  # the rendered FlinkDeployment
    data_dir: Path  # host directory for the state volume
    hosts: Sequence[str] = ()  # names that resolve to 127.0.0.1 (the chart's Services)
    ports: dict[str, int] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for key in ("rest", "rpc", "blob", "query", "tm_rpc", "tm_data", "jm_metrics", "tm_metrics"):
            self.ports.setdefault(key, free_port())

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.deployment["spec"]

    @property
    def main_container(self) -> Mapping[str, Any]:
        [c] = [c for c in self.spec["podTemplate"]["spec"]["containers"] if c["name"] == "flink-main-container"]
        return c

    @property
    def jobmanager(self) -> str:
        return f"{self.name}-jobmanager"

    @property
    def taskmanager(self) -> str:
        return f"{self.name}-taskmanager"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['rest']}"

    def configuration(self, role: str) -> dict[str, str]:
        conf = {k: str(v) for k, v in self.spec["flinkConfiguration"].items()}
        conf.update({
            "high-availability.type": "NONE",
            "jobmanager.rpc.address": "127.0.0.1",
            "jobmanager.rpc.port": str(self.ports["rpc"]),
            "jobmanager.bind-host": "127.0.0.1",
            "rest.address": "127.0.0.1",
            "rest.bind-address": "127.0.0.1",
            "rest.port": str(self.ports["rest"]),
            "blob.server.port": str(self.ports["blob"]),
            "query.server.port": str(self.ports["query"]),
            "taskmanager.host": "127.0.0.1",
            "taskmanager.bind-host": "127.0.0.1",
            "taskmanager.rpc.port": str(self.ports["tm_rpc"]),
            "taskmanager.data.port": str(self.ports["tm_data"]),
            "jobmanager.memory.process.size": str(self.spec["jobManager"]["resource"]["memory"]),
            "taskmanager.memory.process.size": str(self.spec["taskManager"]["resource"]["memory"]),
            "parallelism.default": str(self.spec["job"]["parallelism"]),
            "metrics.reporter.prom.port": str(self.ports["jm_metrics" if role == "jobmanager" else "tm_metrics"]),
        })
        return conf

    def run_args(self, role: str) -> list[str]:
        c = self.main_container
        pod = self.spec["podTemplate"]["spec"]
        sc = {**pod.get("securityContext", {}), **c.get("securityContext", {})}
        args = ["run", "-d", "--name", getattr(self, role), "--network", "host", "--restart", "no",
                "--user", f"{sc['runAsUser']}:{sc.get('runAsGroup', sc['runAsUser'])}",
                "--security-opt", "no-new-privileges", "--cap-drop", "ALL",
                "--memory", memory_bytes(self.spec["jobManager" if role == "jobmanager" else "taskManager"]
                                         ["resource"]["memory"])]
        if sc.get("readOnlyRootFilesystem"):
            args.append("--read-only")
        for host in self.hosts:
            args += ["--add-host", f"{host}:127.0.0.1"]
        for mount in c.get("volumeMounts", []):
            args += ["-v", f"{self.data_dir}:{mount['mountPath']}:rw,z"]
        for e in c.get("env", []):
            args += ["-e", f"{e['name']}={e['value']}"]
        props = "\n".join(f"{k}: {v}" for k, v in self.configuration(role).items())
        args += ["-e", f"FLINK_PROPERTIES={props}"]
        args.append(self.spec["image"])
        job = self.spec["job"]
        if role == "jobmanager":
            # --jars takes several values: it goes first, so --job-classname ends its list.
            args += ["standalone-job", "--jars", job["jarURI"], "--job-classname", job["entryClass"], *job["args"]]
        else:
            args.append("taskmanager")
        return args

    def start(self) -> FlinkApplication:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o777)
        for role in ("jobmanager", "taskmanager"):
            podman.podman(*self.run_args(role))
            self.started.append(getattr(self, role))
        return self

    def wait_running(self, timeout: float = 300) -> str:
        """The job's id once it is RUNNING with every task running; fails with both logs."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for name in self.started:
                state = podman.inspect("container", name)["State"]
                if state["Status"] == "exited":
                    raise AssertionError(f"{name} exited ({state.get('ExitCode')}):\n{self.logs()}")
            try:
                jobs = requests.get(f"{self.rest_url}/jobs/overview", timeout=3).json()["jobs"]
                if jobs:
                    job = jobs[0]
                    last = f"{job['state']} {job.get('tasks')}"
                    tasks = job.get("tasks", {})
                    if job["state"] == "RUNNING" and tasks.get("running") == tasks.get("total") and tasks.get("total"):
                        return str(job["jid"])
            except (requests.RequestException, KeyError, ValueError) as exc:
                last = str(exc)
            time.sleep(2)
        raise AssertionError(f"the score job is not running after {timeout:.0f} s ({last}):\n{self.logs()}")

    def memory_usage(self, container: str) -> int:
        """Bytes the container's cgroup uses now (podman stats)."""
        rows = json.loads(podman.podman("stats", "--no-stream", "--no-reset", "--format", "json", container))
        return parse_size(rows[0]["mem_usage"].split("/")[0].strip())

    def logs(self, tail: int = 60) -> str:
        return "\n".join(f"--- {name}\n{podman.logs(name, tail)}" for name in self.started)

    def stop(self) -> None:
        for name in reversed(self.started):
            podman.podman("rm", "-f", "-t", "10", name, check=False)


UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3,
         "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(text: str) -> int:
    """``"812.3MB"`` (podman stats) or ``"1600m"`` (Flink/Kubernetes memory, binary units) -> bytes."""
    import re

    m = re.fullmatch(r"\s*([\d.]+)\s*([a-zA-Z]*)\s*", text)
    if not m:
        msg = f"not a size: {text!r}"
        raise ValueError(msg)
    return int(float(m.group(1)) * UNITS[m.group(2).lower() or "b"])


def memory_bytes(flink_memory: str) -> str:
    """The container memory limit for a Flink process size (the operator sets limit = request = size)."""
    return str(parse_size(flink_memory))
