"""Every qaflow service as a detached process, for ``qaflow dev up --services``.

Services come from :mod:`qaflow.devstack.catalog` with their container's command and
variables. Each gets its default port when that is free, else a free one (two stacks on one
machine), and counts as ready only when *its own* process holds the port that answered
``/readyz``. Their state goes to ``<state dir>/services.json`` (mode 0600): pid, kernel start
time, port, log, and the ``QAFLOW_*`` variables and arguments they were started with, so
``restart`` brings one back the same way. Variables whose names say they hold a secret
(``*KEY*``, ``*PASSWORD*``, ``*SECRET*``, ``*TOKEN*``) are not written; a restart takes them
from its own environment.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qaflow.devstack.errors import DevStackError
from qaflow.devstack.owners import listener_pids
from qaflow.devstack.pids import stop_pid
from qaflow.devstack.ports import free_port, is_listening
from qaflow.devstack.stack import judge

logger = logging.getLogger(__name__)

SERVICES_FILE = "services.json"
START_ATTEMPTS = 3  # a port we picked may be taken before the service binds it
_SECRET = re.compile(r"KEY|PASSWORD|SECRET|TOKEN", re.IGNORECASE)
_KEEP_ENV = ("PROMETHEUS_MULTIPROC_DIR", "PYTHONUNBUFFERED")


def free_or(port: int) -> int:
    """``port`` when nothing listens there, else a free one."""
    return free_port() if is_listening(port) else port


def _with_port(args: list[str], port: int) -> list[str]:
    """``args`` with the value after ``--port`` (the fake LLM's) replaced by ``port``."""
    out = list(args)
    if "--port" in out:
        out[out.index("--port") + 1] = str(port)
    return out


def _spec(name: str) -> Any:
    from qaflow.devstack.catalog import FAKE_LLM, SERVICES

    if name == FAKE_LLM.name:
        return FAKE_LLM
    if name not in SERVICES:
        msg = f"unknown service {name!r}"
        raise DevStackError(msg)
    return SERVICES[name]


def _process(name: str, env: Mapping[str, str], args: list[str], log: Path, port: int) -> Any:
    from qaflow.devstack.catalog import ServiceProcess

    env = {**env, "QAFLOW_HTTP_PORT": str(port)} if "QAFLOW_HTTP_PORT" in env else dict(env)
    return ServiceProcess(_spec(name), env, log, detached=True, port=port, extra_args=_with_port(args, port))


def launch(name: str, env: Mapping[str, str], args: list[str], log: Path, port: int, *,
           ready_s: float = 60.0) -> Any:
    """Start service ``name`` on ``port`` and wait until it is ready; on another port if ``port`` gets taken.

    Raises RuntimeError with the log's tail when it does not become ready.
    """
    for attempt in range(1, START_ATTEMPTS + 1):
        proc = _process(name, env, args, log, port).start()
        try:
            proc.wait_ready(ready_s)
        except RuntimeError:
            proc.stop(grace_s=10)
            taken = listener_pids(port)
            if not taken or attempt == START_ATTEMPTS:
                raise
            logger.warning("%s: port %s was taken by pid %s; trying another", name, port, sorted(taken))
            port = free_port()
        else:
            return proc
    raise AssertionError  # unreachable: the last attempt re-raises


def record(proc: Any) -> dict[str, Any]:
    """What ``services.json`` keeps of a started service (no secrets)."""
    from qaflow.devstack.catalog import base_environment

    base = base_environment()
    env = {k: v for k, v in proc.env.items()
           if (k.startswith("QAFLOW_") or k in _KEEP_ENV) and base.get(k) != v and not _SECRET.search(k)}
    return {**proc.detach(), "env": env, "args": proc.extra_args}


def save(root: Path, services: dict[str, Any]) -> None:
    path = root / SERVICES_FILE
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(json.dumps({"services": services}, indent=2) + "\n")
    tmp.replace(path)


def load(root: Path) -> dict[str, dict[str, Any]]:
    path = root / SERVICES_FILE
    if not path.is_file():
        return {}
    services: dict[str, dict[str, Any]] = json.loads(path.read_text())["services"]
    return services


def status(root: Path) -> dict[str, Any]:
    """The recorded services, each with ``running`` (and ``why`` when not) by its pid and its own port."""
    services = load(root)
    for info in services.values():
        info.update(judge(info))
    return services


def stop(root: Path) -> dict[str, bool]:
    """Stop every recorded service (the last started first); per service, whether it still ran."""
    services = load(root)
    stopped = {name: stop_pid(info["pid"], info.get("start_time"), grace=25.0)
               for name, info in reversed(list(services.items()))}
    (root / SERVICES_FILE).unlink(missing_ok=True)
    return stopped


def restart(root: Path, name: str, *, down_s: float = 0.0, ready_s: float = 90.0) -> dict[str, Any]:
    """Stop service ``name`` (SIGTERM, then SIGKILL), wait ``down_s``, start it as it was started.

    It keeps its port unless someone else took it meanwhile. Returns its new record.
    """
    import time

    from qaflow.devstack.catalog import base_environment

    services = load(root)
    if name not in services:
        msg = f"no service {name!r} in {root / SERVICES_FILE}: one of {sorted(services)}"
        raise DevStackError(msg)
    info = services[name]
    stop_pid(info["pid"], info.get("start_time"), grace=25.0)
    if down_s > 0:
        time.sleep(down_s)
    # A killed gunicorn master's workers notice and leave within seconds; keep the port if they do.
    deadline = time.monotonic() + 15
    while listener_pids(int(info["port"])) and time.monotonic() < deadline:
        time.sleep(0.2)
    secrets = {k: v for k, v in os.environ.items() if k.upper().startswith("QAFLOW_") and _SECRET.search(k)}
    env = {**base_environment(), **info["env"], **secrets}
    port = free_or(int(info["port"]))
    proc = launch(name, env, list(info.get("args", [])), Path(info["log"]), port, ready_s=ready_s)
    services[name] = record(proc)
    save(root, services)
    return {**services[name], **judge(services[name])}
