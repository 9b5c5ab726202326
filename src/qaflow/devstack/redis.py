"""A private Redis server: no persistence, loopback only."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from qaflow.devstack.errors import MissingBinaryError, require_module
from qaflow.devstack.ports import LOOPBACK
from qaflow.devstack.process import ServerProcess


class RedisServer(ServerProcess):
    """``redis-server`` on 127.0.0.1 with RDB snapshots and the AOF switched off."""

    name = "redis"

    def __init__(self, workdir: Path | str, port: int | None = None, **kwargs: Any) -> None:
        super().__init__(workdir, port, **kwargs)
        self._binary: str | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def check(self) -> None:
        require_module("redis", "redis")
        self._binary = shutil.which("redis-server") or shutil.which(
            "redis-server", path="/usr/bin:/usr/local/bin:/usr/sbin"
        )
        if self._binary is None:
            raise MissingBinaryError(what="redis-server", looked_in="PATH, /usr/bin, /usr/local/bin")

    def command(self) -> list[str]:
        assert self._binary is not None, "check() first"
        return [
            self._binary,
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]

    def ping(self) -> None:
        import redis

        client = redis.Redis(host=LOOPBACK, port=self.port, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
