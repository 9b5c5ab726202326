"""The cache backends, by URL scheme (pure data, see :mod:`qaflow.core.plugins`); the first is the default."""

from __future__ import annotations

from qaflow.core.plugins import Family, Plugin

FAMILY = Family("cache_url", (
    Plugin("memory", "qaflow.cache.memory:MemoryCache", "memory://"),
    Plugin("none", "qaflow.cache.memory:NoCache", "none://"),
    Plugin("redis", "qaflow.cache.redis:RedisCache", "redis://host:port/db",
           extra="redis", dependency="redis", aliases=("rediss",)),
), by_scheme=True)
