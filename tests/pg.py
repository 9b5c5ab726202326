"""PostgreSQL look-ups the end-to-end tests share (psycopg2, one connection per call)."""

from __future__ import annotations

from typing import Any

import psycopg2


def pg_rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every row ``sql`` returns at ``url`` (a libpq URL); psycopg2.Error when it fails."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())
    finally:
        conn.close()


def terminal_count(url: str) -> int:
    """How many questions have a row in ``results`` (a terminal state); 0 while PostgreSQL is
    unreachable or the tables are not created yet."""
    try:
        return int(pg_rows(url, "SELECT count(*) FROM results")[0][0])
    except psycopg2.Error:
        return 0
