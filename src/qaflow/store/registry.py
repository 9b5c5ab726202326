"""The store backends, by URL scheme (pure data, see :mod:`qaflow.core.plugins`); the first is the default."""

from __future__ import annotations

from qaflow.core.plugins import Family, Plugin

FAMILY = Family("store_url", (
    Plugin("sqlite", "qaflow.store.sqlite:SqliteStore", "sqlite:///path"),
    Plugin("postgresql", "qaflow.store.postgres:PostgresStore", "postgresql://user:pass@host/db",
           extra="postgres", dependency="psycopg2", aliases=("postgres",)),
), by_scheme=True)
