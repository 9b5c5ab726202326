"""``postgresql://user:pass@host:port/db``: the store on PostgreSQL, through psycopg2.

A pool of psycopg2 connections serves the threads (or greenlets) of a process. It is sized
by the URL's ``pool_min`` / ``pool_max`` query parameters (default 1 and 8; they are removed
before libpq sees the URL): ``pool_min`` connections open at start, more open on demand, and
every connection opened is kept, up to ``pool_max``; a caller finding all of them in use waits.

Why keep them: psycopg2's ``ThreadedConnectionPool`` closes a returned connection whenever
``minconn`` connections are idle already, so with ``pool_min=1`` most requests of a busy api
opened a new PostgreSQL session (1,114-1,192 new sessions per 1,500 requests, issue 13).
:class:`KeepingPool` is that same pool with the keep limit raised to ``maxconn`` after the
first connections open; a connection that failed is still closed and replaced on demand.

Migrations take a transaction-scoped advisory lock, so several processes starting at once
apply each migration exactly once.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from qaflow.core.errors import ConfigError, MissingExtraError
from qaflow.core.messages import QuestionMessage, ResultMessage, ScoreRecord, Status
from qaflow.store.sql import STALE_QUEUED_S, Dialect, SqlStore, repaired

logger = logging.getLogger(__name__)

POSTGRES = Dialect(param="%s", json="JSONB", float="DOUBLE PRECISION", serial="BIGSERIAL")
MIGRATION_LOCK = 0x71A_F10E  # pg_advisory_xact_lock key: "qaflow migrations"
POOL_DEFAULTS = {"pool_min": 1, "pool_max": 8}
LIBPQ_DEFAULTS = {"connect_timeout": "5", "application_name": "qaflow"}


def sized_url(url: str, size: int) -> str:
    """``url`` with ``pool_min=pool_max=size`` unless it names a pool size itself; other URLs unchanged.

    The api sizes its pool by its own concurrency (one connection per gunicorn thread), opened
    at warm-up; an operator's ``pool_min``/``pool_max`` in ``QAFLOW_STORE_URL`` win.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        return url
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "pool_max" in query or "pool_min" in query:
        return url
    query.update(pool_min=str(size), pool_max=str(size))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


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
    for option, value in LIBPQ_DEFAULTS.items():
        query.setdefault(option, value)
    dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
    return dsn, sizes["pool_min"], sizes["pool_max"]


def keeping_pool(opened: int, maxconn: int, dsn: str) -> Any:
    """A psycopg2 ``ThreadedConnectionPool`` that opens ``opened`` connections now and keeps every
    returned connection up to ``maxconn`` (psycopg2 keeps at most ``minconn``: ``pool.py``, ``_putconn``).

    ``minconn`` is read nowhere else after the constructor has opened the first connections,
    so raising it to ``maxconn`` there turns "keep ``minconn``" into "keep all", while
    connections still open lazily. Raises psycopg2.OperationalError when the first ones cannot open.
    """
    from psycopg2.pool import ThreadedConnectionPool

    pool = ThreadedConnectionPool(opened, maxconn, dsn)
    pool.minconn = maxconn
    return pool


def _server_hung_up(conn: Any) -> bool:
    """Has the server sent something to this idle connection? Then it is ending the session
    (a restart, ``pg_terminate_backend``, an idle timeout: a FATAL message, then EOF), as
    qaflow never LISTENs. A zero-timeout ``select``: microseconds, no round trip, so a kept
    connection that died while idle is replaced before use instead of failing a request."""
    if conn.closed:
        return True
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    return bool(readable)


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
            import psycopg2.pool  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the install
            msg = "psycopg2"
            raise MissingExtraError(msg, "postgres") from exc
        if self._pool is None:
            self._pool = keeping_pool(self._min, self._max, self._dsn)
        self.migrate()

    def lock_migrations(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))

    def _checkout(self) -> Any:
        """A pooled connection the server has not ended (call holding ``self._slots``)."""
        if self._pool is None:
            msg = "PostgresStore.start() was not called"
            raise RuntimeError(msg)
        pool = self._pool
        conn = pool.getconn()
        for _ in range(self._max):  # every idle connection may be dead after a server restart
            if not _server_hung_up(conn):
                break
            pool.putconn(conn, close=True)
            conn = pool.getconn()
        return conn

    @contextmanager
    def statement(self) -> Iterator[Any]:
        """One pooled connection in autocommit mode, for work that is a single statement.

        A single statement is atomic on its own; inside :meth:`transaction` psycopg2 sends
        ``BEGIN`` before it and ``COMMIT`` after it, each a round trip of its own, so three
        where one does (issue 13: a POST's :meth:`admit`).
        """
        with self._slots:
            conn = self._checkout()
            try:
                conn.autocommit = True
                yield conn
            finally:
                broken = bool(conn.closed)
                if not broken:
                    try:
                        conn.autocommit = False  # the pool's other users expect transactions
                    except Exception:  # a statement still under way (its caller interrupted): drop it
                        broken = True
                self._pool.putconn(conn, close=broken)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One pooled connection inside one transaction: commit on success, else roll back."""
        with self._slots:
            conn = self._checkout()
            pool = self._pool
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

    def question_view(self, question_id: str) -> tuple[Status | None, ResultMessage | None, list[ScoreRecord]]:
        """State, terminal result and scored attempts of a question, in one statement (one round trip).

        The state follows :meth:`SqlStore.status`: the result's status, else ``processing`` with
        an attempt, else ``queued`` when the question is recorded, else None (unknown).
        """
        row = self._one(
            """SELECT (SELECT body FROM results WHERE question_id = %s),
                      (SELECT json_agg(body ORDER BY generation) FROM attempts WHERE question_id = %s),
                      EXISTS (SELECT 1 FROM questions WHERE question_id = %s)""",
            (question_id, question_id, question_id),
        )
        result = None if row[0] is None else ResultMessage.model_validate_json(self._text(row[0]))
        attempts = [ScoreRecord.model_validate_json(self._text(a)) for a in row[1] or []]
        if result is not None:
            return result.status, result, attempts
        if attempts:
            return Status.PROCESSING, None, attempts
        return (Status.QUEUED if row[2] else None), None, attempts

    def admit(self, question: QuestionMessage) -> tuple[ResultMessage | None, bool, Status]:
        """A POST's store work in one statement: the stored result if there is one, else
        :meth:`SqlStore.record_question` (True: recorded now, enqueue it) and, when it was not
        recorded (in flight), its state (``processing`` with a scored attempt, else ``queued``).

        The question row is written only when no result exists, as ``get_result`` then
        ``record_question`` did; all parts see one snapshot.
        """
        q = repaired(question)
        now = time.time()
        sql = """WITH stored AS (SELECT body FROM results WHERE question_id = %(id)s),
                    recorded AS (
                      INSERT INTO questions (question_id, title, content, reference_answer, category, run_id,
                                             submitted_at, enqueued_at)
                      SELECT %(id)s, %(title)s, %(content)s, %(reference)s, %(category)s, %(run_id)s,
                             %(submitted_at)s, %(now)s
                      WHERE NOT EXISTS (SELECT 1 FROM stored)
                      ON CONFLICT (question_id) DO UPDATE SET enqueued_at = excluded.enqueued_at
                      WHERE questions.enqueued_at < %(stale)s
                        AND NOT EXISTS (SELECT 1 FROM results r WHERE r.question_id = questions.question_id)
                      RETURNING 1)
               SELECT (SELECT body FROM stored), EXISTS (SELECT 1 FROM recorded),
                      EXISTS (SELECT 1 FROM attempts WHERE question_id = %(id)s)"""
        params = {"id": q.question_id, "title": q.title, "content": q.content, "reference": q.reference_answer,
                  "category": q.category, "run_id": q.run_id, "submitted_at": q.submitted_at, "now": now,
                  "stale": now - STALE_QUEUED_S}
        with self.statement() as conn:
            cur = conn.cursor()
            cur.execute(sql, params)
            row = cur.fetchone()
        if row[0] is not None:
            result = ResultMessage.model_validate_json(self._text(row[0]))
            return result, False, result.status
        return None, bool(row[1]), Status.PROCESSING if row[2] else Status.QUEUED

    def close(self) -> None:
        if self._pool is not None:
            self._pool.closeall()
            self._pool = None
