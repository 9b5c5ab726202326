"""Kafka, PostgreSQL and Redis together: for benchmarks, and ``up``/``down`` for developers."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self

from qaflow.devstack.errors import DevStackError
from qaflow.devstack.kafka import KafkaServer
from qaflow.devstack.owners import listener_pids, owns_port
from qaflow.devstack.pids import alive, stop_pid
from qaflow.devstack.postgres import PostgresServer
from qaflow.devstack.process import ServerProcess
from qaflow.devstack.redis import RedisServer

logger = logging.getLogger(__name__)
STATE_FILE = "state.json"
SERVER_CLASSES: dict[str, type[ServerProcess]] = {
    "kafka": KafkaServer,
    "postgres": PostgresServer,
    "redis": RedisServer,
}
STEPS_PER_SERVER = 2  # progress steps of start(): "<name> prepared", "<name> ready"


class DevStack:
    """One server of each kind under ``root_dir/<name>``."""

    def __init__(self, root_dir: Path | str, *, detached: bool = False) -> None:
        root = Path(root_dir)
        self.kafka = KafkaServer(root / "kafka", detached=detached)
        self.postgres = PostgresServer(root / "postgres", detached=detached)
        self.redis = RedisServer(root / "redis", detached=detached)
        self.servers: tuple[ServerProcess, ...] = (self.kafka, self.postgres, self.redis)

    def check(self) -> None:
        """Raise MissingBinaryError (or MissingExtraError) if a server cannot start here."""
        for server in self.servers:
            server.check()

    def start(self, step: Callable[[str], None] | None = None) -> Self:
        """Start all three; nothing is left running if one fails.

        ``step`` (progress) is called, from any thread, as each server is prepared and ready.
        """
        self.check()  # fail on a missing binary before starting anything
        done = step or (lambda what: None)

        def prepare(server: ServerProcess) -> None:
            _prepare(server)
            done(f"{server.name} prepared")

        def ready(server: ServerProcess) -> None:
            server.wait_ready()
            done(f"{server.name} ready")

        try:
            # Storage set-up and readiness waits overlap in threads. The servers themselves are
            # spawned from this thread: attached ones die with the thread that forked them.
            with ThreadPoolExecutor(len(self.servers)) as pool:
                list(pool.map(prepare, self.servers))
                for server in self.servers:
                    server.spawn()
                list(pool.map(ready, self.servers))
        except BaseException:
            self.stop()
            raise
        return self

    def addresses(self) -> dict[str, str]:
        return {
            "kafka_bootstrap": self.kafka.bootstrap,
            "postgres_url": self.postgres.url,
            "redis_url": self.redis.url,
        }

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _prepare(server: ServerProcess) -> None:
    server.pick_ports()
    server.prepare()


def default_state_dir() -> Path:
    """``<repo>/.devstack`` when run from a checkout, else ``./.devstack``."""
    repo = Path(__file__).resolve().parents[3]
    base = repo if (repo / "pyproject.toml").is_file() else Path.cwd()
    return base / ".devstack"


def status(state_dir: Path | str | None = None) -> dict[str, Any]:
    """The saved state with ``running`` per server, or ``{"running": False}`` if none."""
    path = Path(state_dir or default_state_dir()) / STATE_FILE
    if not path.is_file():
        return {"running": False, "state_file": str(path)}
    state: dict[str, Any] = json.loads(path.read_text())
    for info in state["servers"].values():
        info.update(judge(info))
    state["running"] = all(info["running"] for info in state["servers"].values())
    return state


def judge(info: dict[str, Any]) -> dict[str, Any]:
    """``running`` and, when not, ``why``: by the recorded pid and the recorded port only.

    The process must be the one recorded (pid and kernel start time) and it, or a child,
    must hold the listening socket of its own port: whoever else answers there does not count.
    """
    if not alive(info["pid"], info.get("start_time")):
        return {"running": False, "why": f"pid {info['pid']} has exited"}
    if info.get("port") and not owns_port(info["pid"], int(info["port"])):
        others = sorted(listener_pids(int(info["port"])))
        who = f"pid {', '.join(map(str, others))}" if others else "nobody"
        return {"running": False, "why": f"pid {info['pid']} runs but does not listen on port {info['port']} "
                f"(listening there: {who})"}
    return {"running": True}


def _save(root: Path, state: dict[str, Any]) -> None:
    path = root / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)


def restart(name: str, state_dir: Path | str | None = None, *, down_s: float = 0.0) -> dict[str, Any]:
    """Stop server ``name`` of a stack ``up()`` started, wait ``down_s`` seconds, start it again.

    It comes back on the same port(s) and the same data directory (Kafka's log and
    PostgreSQL's data survive; Redis runs without persistence, so its keys do not), so
    clients reconnect to the address they had. Returns the server's new state.
    """
    root = Path(state_dir or default_state_dir()).resolve()
    path = root / STATE_FILE
    if not path.is_file():
        msg = f"no dev stack in {root} (qaflow dev up)"
        raise DevStackError(msg)
    state: dict[str, Any] = json.loads(path.read_text())
    if name not in state["servers"] or name not in SERVER_CLASSES:
        msg = f"unknown server {name!r}: one of {sorted(state['servers'])}"
        raise DevStackError(msg)
    info = state["servers"][name]
    t0 = time.monotonic()
    # stop_pid, not stop_detached: that one also removes a private PostgreSQL data directory.
    stop_pid(info["pid"], info.get("start_time"), sig=SERVER_CLASSES[name].stop_signal)
    stopped_in = time.monotonic() - t0
    if down_s > 0:
        time.sleep(down_s)
    t1 = time.monotonic()
    server = _server_like(name, info)
    server.start()
    state["servers"][name] = server.detach()
    _save(root, state)
    logger.info("devstack: %s restarted on port %s", name, info["port"])
    timing = {"stopped_in_s": round(stopped_in, 1), "started_in_s": round(time.monotonic() - t1, 1)}
    return {**state["servers"][name], **judge(state["servers"][name]), **timing}


def _server_like(name: str, info: dict[str, Any]) -> ServerProcess:
    """A server of kind ``name`` on the recorded port(s) and directories, keeping its data."""
    workdir, port = Path(info["workdir"]), int(info["port"])
    if name == "kafka":
        return KafkaServer(workdir, port, controller_port=int(info["controller_port"]), keep_data=True,
                           detached=True)
    if name == "postgres":
        pg = PostgresServer(workdir, port, detached=True)
        if info.get("data_root"):
            pg.data_root = Path(info["data_root"])
        return pg
    return SERVER_CLASSES[name](workdir, port, detached=True)


def up(state_dir: Path | str | None = None, step: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Start the three servers detached, fresh, and save their pids and addresses.

    They outlive this process; ``down()`` stops them. If a complete stack from an earlier
    ``up`` still runs, its state is returned unchanged. ``step``: see :meth:`DevStack.start`.
    """
    root = Path(state_dir or default_state_dir()).resolve()
    current = status(root)
    if current["running"]:
        return current
    down(root)
    for name in SERVER_CLASSES:
        shutil.rmtree(root / name, ignore_errors=True)
    stack = DevStack(root, detached=True).start(step)
    state = {
        "addresses": stack.addresses(),
        "servers": {server.name: server.detach() for server in stack.servers},
    }
    _save(root, state)
    logger.info("devstack up: %s", state["addresses"])
    return status(root)


def down(state_dir: Path | str | None = None) -> dict[str, bool]:
    """Stop what ``up()`` started; returns, per server, whether it was still running."""
    path = Path(state_dir or default_state_dir()) / STATE_FILE
    if not path.is_file():
        return {}
    servers: dict[str, dict[str, Any]] = json.loads(path.read_text())["servers"]
    if unknown := set(servers) - set(SERVER_CLASSES):
        msg = f"unknown servers {sorted(unknown)} in {path}"
        raise DevStackError(msg)
    stopped = {name: SERVER_CLASSES[name].stop_detached(info) for name, info in servers.items()}
    path.unlink()
    return stopped
