"""A requests-per-minute quota shared by every replica, through Redis.

GCRA (the generic cell rate algorithm) in its "virtual scheduling" form: one Redis key per
provider and model holds the theoretical arrival time (TAT) of the next call. Each call
reserves the next slot in one atomic Lua script, which returns how long to wait, so the
replicas together make at most one call every ``60 / rpm`` seconds: evenly spaced, with no
burst, so no sliding one-minute window ever sees more than ``rpm`` calls. The script reads
Redis's own clock (``TIME``), so replicas on machines with skewed clocks still agree.

When Redis cannot be reached, calls fall back to a limiter local to the process at the same
rate, so one replica alone stays under the quota and several together may exceed it (at most
replicas x rpm) until Redis is back. A failure never fails the call; it is logged at most
every 30 s, and Redis is tried again after ``breaker_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from qaflow.plumbing.redis_client import connect, unreachable_errors

logger = logging.getLogger(__name__)

KEY_PREFIX = "qaflow:rpm:v1:"  # + "<provider>:<model>"
SOCKET_TIMEOUT_S = 0.5
BREAKER_S = 5.0
LOG_EVERY_S = 30.0

# KEYS[1]: the TAT key; ARGV[1]: emission interval in microseconds.
# Returns the microseconds the caller must wait before its call.
GCRA_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local interval = tonumber(ARGV[1])
local next_tat = tat + interval
local ttl_ms = math.ceil((next_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', ttl_ms)
return tat - now
"""


class RpmLimiter(Protocol):
    rpm: int

    def acquire(self) -> float:
        """Block until the caller may make one call; returns the seconds waited."""

    def close(self) -> None: ...


class LocalRpmLimiter:
    """The same schedule, for one process (the fallback, and when no Redis is configured)."""

    def __init__(
        self,
        rpm: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if rpm < 1:
            msg = "rpm must be >= 1"
            raise ValueError(msg)
        self.rpm = rpm
        self.interval_s = 60.0 / rpm
        self.clock = clock
        self.sleep = sleep
        self._tat = float("-inf")
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Seconds until the reserved slot."""
        with self._lock:
            now = self.clock()
            tat = max(self._tat, now)
            self._tat = tat + self.interval_s
            return tat - now

    def acquire(self) -> float:
        wait = self.reserve()
        if wait > 0:
            self.sleep(wait)
        return wait

    def close(self) -> None:
        pass


class RedisRpmLimiter:
    """The shared schedule in Redis, keyed by provider and model."""

    def __init__(
        self,
        rpm: int,
        url: str,
        scope: str,
        *,
        prefix: str = KEY_PREFIX,
        socket_timeout_s: float = SOCKET_TIMEOUT_S,
        breaker_s: float = BREAKER_S,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.rpm = rpm
        self.url = url
        self.key = prefix + scope
        self.interval_us = round(60_000_000 / rpm)
        self.socket_timeout_s = socket_timeout_s
        self.breaker_s = breaker_s
        self.sleep = sleep
        self.local = LocalRpmLimiter(rpm, sleep=sleep)
        self.fallbacks = 0
        self._client: Any = None
        self._script: Any = None
        self._errors: tuple[type[BaseException], ...] = (OSError,)
        self._open_until = 0.0
        self._last_log = float("-inf")
        self._lock = threading.Lock()

    def start(self) -> None:
        self._errors = unreachable_errors()
        self._client = connect(self.url, timeout_s=self.socket_timeout_s)
        self._script = self._client.register_script(GCRA_RESERVE)

    def reserve(self) -> float:
        """Seconds until the reserved slot: from Redis, else from the local fallback."""
        if self._script is None:
            self.start()
        if time.monotonic() >= self._open_until:
            try:
                wait_us = int(self._script(keys=[self.key], args=[self.interval_us]))
            except self._errors as exc:
                self._open_until = time.monotonic() + self.breaker_s
                self._report(exc)
            else:
                return max(0.0, wait_us / 1_000_000)
        self.fallbacks += 1
        return self.local.reserve()

    def acquire(self) -> float:
        wait = self.reserve()
        if wait > 0:
            self.sleep(wait)
        return wait

    def _report(self, exc: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_log < LOG_EVERY_S:
                return
            self._last_log = now
        logger.warning(
            "redis unavailable for the shared rate limit (%s); limiting this process alone to %d calls/min: %s",
            self.key,
            self.rpm,
            exc,
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = self._script = None


def open_rpm_limiter(rpm: int, cache_url: str, provider: str, model: str) -> RpmLimiter | None:
    """None when ``rpm`` is 0; shared through Redis when ``cache_url`` is ``redis://``, else local."""
    if rpm <= 0:
        return None
    if cache_url.startswith(("redis://", "rediss://")):
        limiter = RedisRpmLimiter(rpm, cache_url, f"{provider}:{model}")
        limiter.start()
        return limiter
    logger.warning(
        "QAFLOW_RPM_LIMIT=%d but QAFLOW_CACHE_URL is not redis://: the limit applies to this process alone", rpm
    )
    return LocalRpmLimiter(rpm)
