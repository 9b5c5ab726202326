"""Cache backends chosen by URL scheme: ``memory://``, ``none://`` and ``redis://``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qaflow.core.errors import ConfigError, MissingExtraError

if TYPE_CHECKING:
    from qaflow.cache.base import Cache


def open_cache(url: str) -> Cache:
    scheme = url.split("://", 1)[0]
    if scheme == "memory":
        from qaflow.cache.memory import MemoryCache

        return MemoryCache(url)
    if scheme == "none":
        from qaflow.cache.memory import NoCache

        return NoCache(url)
    if scheme in ("redis", "rediss"):
        try:
            from qaflow.cache.redis import RedisCache
        except ImportError as exc:  # pragma: no cover - depends on the install
            msg = "redis"
            raise MissingExtraError(msg, "redis") from exc
        return RedisCache(url)
    msg = f"QAFLOW_CACHE_URL: unsupported scheme {scheme!r} (use memory://, none:// or redis://host:port/db)"
    raise ConfigError(msg)
