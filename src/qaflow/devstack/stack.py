"""Kafka, PostgreSQL and Redis together: for benchmarks, and ``up``/``down`` for developers."""

from __future__ import annotations

import json
import logging
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self

from qaflow.devstack.errors import DevStackError
from qaflow.devstack.kafka import KafkaServer
from qaflow.devstack.pids import alive
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

    def start(self) -> Self:
        """Start all three; nothing is left running if one fails."""
        self.check()  # fail on a missing binary before starting anything
        try:
            # Storage set-up and readiness waits overlap in threads. The servers themselves are
            # spawned from this thread: attached ones die with the thread that forked them.
            with ThreadPoolExecutor(len(self.servers)) as pool:
                list(pool.map(_prepare, self.servers))
                for server in self.servers:
                    server.spawn()
                list(pool.map(lambda s: s.wait_ready(), self.servers))
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
        info["running"] = alive(info["pid"], info.get("start_time"))
    state["running"] = all(info["running"] for info in state["servers"].values())
    return state


def up(state_dir: Path | str | None = None) -> dict[str, Any]:
    """Start the three servers detached, fresh, and save their pids and addresses.

    They outlive this process; ``down()`` stops them. If a complete stack from an earlier
    ``up`` still runs, its state is returned unchanged.
    """
    root = Path(state_dir or default_state_dir()).resolve()
    current = status(root)
    if current["running"]:
        return current
    down(root)
    for name in SERVER_CLASSES:
        shutil.rmtree(root / name, ignore_errors=True)
    stack = DevStack(root, detached=True).start()
    state = {
        "addresses": stack.addresses(),
        "servers": {server.name: server.detach() for server in stack.servers},
    }
    path = root / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)
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
