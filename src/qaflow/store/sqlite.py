"""``sqlite:///path``: the embedded store. One connection guarded by a lock (WAL mode)."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qaflow.store.sql import Dialect, SqlStore

SQLITE = Dialect(param="?", json="TEXT", float="REAL", serial="INTEGER")
BUSY_TIMEOUT_S = 30.0  # how long a statement waits for another connection's lock


def enter_wal(conn: sqlite3.Connection, timeout_s: float = BUSY_TIMEOUT_S) -> None:
    """Put the database in WAL mode, waiting up to ``timeout_s`` seconds for other connections.

    Connections switching a new database's journal mode at the same moment can get
    ``database is locked`` at once: SQLite skips the busy handler where waiting could deadlock
    (https://www.sqlite.org/c3ref/busy_handler.html), so the connection's timeout does not
    apply. Retried here after 10-50 ms, until the timeout.

    Raises:
        sqlite3.OperationalError: any other error, or still locked after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(0.01 + 0.04 * random.random())


class SqliteStore(SqlStore):
    dialect = SQLITE

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = url.removeprefix("sqlite:///") or ":memory:"
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    def start(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        enter_wal(self._conn)
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self.migrate()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        if self._conn is None:
            msg = "SqliteStore.start() was not called"
            raise RuntimeError(msg)
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
