"""``postgresql://user:pass@host:port/db``: the store on PostgreSQL, through psycopg2.

A ``ThreadedConnectionPool`` (sized by the URL's ``pool_min`` / ``pool_max`` query
parameters, default 1 and 8; they are removed before libpq sees the URL) serves the
threads of a process. Migrations take a transaction-scoped advisory lock, so several
processes starting at once apply each migration exactly once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from qaflow.core.errors import ConfigError, MissingExtraError
from qaflow.store.sql import Dialect, SqlStore

logger = logging.getLogger(__name__)

POSTGRES = Dialect(param="%s", json="JSONB", float="DOUBLE PRECISION", serial="BIGSERIAL")
MIGRATION_LOCK = 0x71A_F10E  # pg_advisory_xact_lock key: "qaflow migrations"
POOL_DEFAULTS = {"pool_min": 1, "pool_max": 8}
LIBPQ_DEFAULTS = {"connect_timeout": "5", "application_name": "qaflow"}


def split_url(url: str) -> tuple[str, int, int]:
    """The libpq URL (pool options removed, defaults added) and the pool's min and max size."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    sizes: dict[str, int] = {}
    for name, default in POOL_DEFAULTS.items():
        raw = query.pop(name, str(default))
        if not raw.isdigit():
            msg = f"QAFLOW_STORE_URL: {name} must be a whole number, got {raw!r}"
            raise ConfigError(msg)
        sizes[name] = int(raw)
    if not 0 <= sizes["pool_min"] <= sizes["pool_max"] or sizes["pool_max"] < 1:
        msg = f"QAFLOW_STORE_URL: need 0 <= pool_min <= pool_max and pool_max >= 1, got {sizes}"
        raise ConfigError(msg)
    for name, value in LIBPQ_DEFAULTS.items():
        query.setdefault(name, value)
    dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
    return dsn, sizes["pool_min"], sizes["pool_max"]


class PostgresStore(SqlStore):
    dialect = POSTGRES

    def __init__(self, url: str) -> None:
        self.url = url
        self._dsn, self._min, self._max = split_url(url)
        self._pool: Any = None
        # ThreadedConnectionPool raises when empty; the semaphore makes callers wait instead.
        self._slots = threading.BoundedSemaphore(self._max)

    def start(self) -> None:
        try:
            from psycopg2.pool import ThreadedConnectionPool
        except ImportError as exc:  # pragma: no cover - depends on the install
            msg = "psycopg2"
            raise MissingExtraError(msg, "postgres") from exc
        if self._pool is None:
            self._pool = ThreadedConnectionPool(self._min, self._max, self._dsn)
        self.migrate()

    def lock_migrations(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One pooled connection inside one transaction: commit on success, else roll back."""
        if self._pool is None:
            msg = "PostgresStore.start() was not called"
            raise RuntimeError(msg)
        pool = self._pool
        with self._slots:
            conn = pool.getconn()
            broken = False
            try:
                yield conn
                conn.commit()
            except BaseException:
                try:
                    conn.rollback()
                except Exception:  # the connection itself failed: drop it from the pool
                    broken = True
                raise
            finally:
                pool.putconn(conn, close=broken or bool(conn.closed))

    def insert_many(self, cur: Any, sql: str, width: int, rows: Sequence[tuple[Any, ...]]) -> None:
        """All rows in one multi-row statement (``psycopg2.extras.execute_values``): one round trip."""
        from psycopg2.extras import execute_values

        if rows:
            execute_values(cur, sql.format(values="%s"), rows, page_size=len(rows))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.closeall()
            self._pool = None
