"""Store backends chosen by URL scheme: ``sqlite:///path`` and ``postgresql://...``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qaflow.core.errors import ConfigError, MissingExtraError

if TYPE_CHECKING:
    from qaflow.store.base import Store


def open_store(url: str) -> Store:
    scheme = url.split("://", 1)[0]
    if scheme == "sqlite":
        from qaflow.store.sqlite import SqliteStore

        return SqliteStore(url)
    if scheme in ("postgresql", "postgres"):
        try:
            from qaflow.store.postgres import PostgresStore
        except ImportError as exc:  # pragma: no cover - depends on the install
            msg = "psycopg2"
            raise MissingExtraError(msg, "postgres") from exc
        return PostgresStore(url)
    msg = f"QAFLOW_STORE_URL: unsupported scheme {scheme!r} (use sqlite:///path or postgresql://...)"
    raise ConfigError(msg)
