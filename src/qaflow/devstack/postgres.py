"""A private PostgreSQL server: its own data directory, port and socket directory."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from qaflow.devstack.errors import MissingBinaryError, require_module
from qaflow.devstack.ports import LOOPBACK
from qaflow.devstack.process import ServerProcess
from qaflow.devstack.unix_user import chown_tree, run_user, traversable_by

SUPERUSER = "postgres"
_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Tests throw the data away, so durability is switched off for speed.
_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "logging_collector": "off",
}


def find_bindir() -> Path:
    """``pg_config --bindir``, else the highest /usr/lib/postgresql/<version>/bin."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(out.stdout.strip()))
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(versions, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    for bindir in candidates:
        if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
            return bindir
    raise MissingBinaryError(what="PostgreSQL server (initdb, postgres)", looked_in="pg_config, /usr/lib/postgresql")


class PostgresServer(ServerProcess):
    """``postgres`` on 127.0.0.1 with trust auth for the ``postgres`` superuser.

    PostgreSQL refuses to run as root: as root it runs as the ``postgres`` system user (or a
    ``qaflow`` one it creates). If that user cannot reach ``workdir`` (pytest's tmp dirs are
    0700), the data directory goes to a private temporary directory removed on ``stop()``.
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: does not wait for clients to leave

    def __init__(self, workdir: Path | str, port: int | None = None, **kwargs: Any) -> None:
        super().__init__(workdir, port, **kwargs)
        self.user: str | None = None
        self.data_root: Path | None = None
        self._bindir: Path | None = None

    @property
    def dsn(self) -> str:
        return f"host={LOOPBACK} port={self.port} user={SUPERUSER} dbname=postgres"

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/{dbname}"

    def check(self) -> None:
        require_module("psycopg2", "postgres")
        self._bindir = find_bindir()

    def prepare(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.user = run_user()
        if self.data_root is None:
            self.data_root = self.workdir
            if self.user and not traversable_by(self.workdir, self.user):
                self.data_root = Path(tempfile.mkdtemp(prefix="qaflow-postgres-"))
        (self.data_root / "run").mkdir(exist_ok=True)
        if self.user:
            chown_tree(self.data_root, self.user)
        if (self.data_root / "data" / "PG_VERSION").exists():
            return
        assert self._bindir is not None, "check() first"
        initdb = [str(self._bindir / "initdb"), "-D", str(self.data_root / "data"), "-U", SUPERUSER]
        initdb += ["-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]
        self.run_step("initdb", initdb, **self.popen_kwargs())

    def popen_kwargs(self) -> dict[str, Any]:
        assert self.data_root is not None
        kwargs: dict[str, Any] = {"cwd": self.data_root}
        if self.user:
            kwargs.update(user=self.user, group=self.user, extra_groups=[])
        return kwargs

    def command(self) -> list[str]:
        assert self._bindir is not None and self.data_root is not None
        cmd = [str(self._bindir / "postgres"), "-D", str(self.data_root / "data"), "-p", str(self.port)]
        cmd += ["-h", LOOPBACK, "-k", str(self.data_root / "run")]
        for key, value in _SETTINGS.items():
            cmd += ["-c", f"{key}={value}"]
        return cmd

    def ping(self) -> None:
        import psycopg2

        psycopg2.connect(self.dsn, connect_timeout=2).close()

    def stop(self, grace: float = 20.0) -> None:
        super().stop(grace)
        if self.data_root is not None and self.data_root != self.workdir:
            shutil.rmtree(self.data_root, ignore_errors=True)
            self.data_root = None

    def detach(self) -> dict[str, Any]:
        return {**super().detach(), "data_root": str(self.data_root)}

    @classmethod
    def stop_detached(cls, info: dict[str, Any], grace: float = 20.0) -> bool:
        stopped = super().stop_detached(info, grace)
        if info.get("data_root") and info["data_root"] != info["workdir"]:
            shutil.rmtree(info["data_root"], ignore_errors=True)
        return stopped

    def create_database(self, name: str) -> str:
        """Create database ``name`` (lower-case letters, digits, ``_``); return its URL."""
        self._execute(f'CREATE DATABASE "{_checked(name)}"')
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing any connection a test left open."""
        self._execute(f'DROP DATABASE IF EXISTS "{_checked(name)}" WITH (FORCE)')

    def _execute(self, statement: str) -> None:
        import psycopg2

        conn = psycopg2.connect(self.dsn, connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()


def _checked(name: str) -> str:
    if not _DB_NAME.fullmatch(name):
        msg = f"database name {name!r}: use 1-63 lower-case letters, digits and _"
        raise ValueError(msg)
    return name
