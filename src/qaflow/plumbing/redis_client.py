"""Redis clients for calls that must never hang or fail the caller (the result cache, the rate limiter).

Sockets time out after ``timeout_s`` both to connect and to read, timeouts are not retried,
and connections open lazily (on the first command), so a Redis that is down does not fail
start-up. The caller catches :func:`unreachable_errors` and falls back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qaflow.core.errors import MissingExtraError

if TYPE_CHECKING:
    import redis


def _redis_module() -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - depends on the install
        msg = "redis"
        raise MissingExtraError(msg, "redis") from exc
    return redis


def connect(url: str, *, timeout_s: float, **options: Any) -> redis.Redis:
    """A client for ``redis://`` / ``rediss://`` ``url``; ``options`` go to ``redis.Redis.from_url``.

    Raises :class:`MissingExtraError` without the ``redis`` extra.
    """
    client: redis.Redis = _redis_module().Redis.from_url(
        url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, retry_on_timeout=False, **options
    )
    return client


def unreachable_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a call raises when Redis is down, slow or refuses it."""
    redis_module = _redis_module()
    return (redis_module.RedisError, OSError)
