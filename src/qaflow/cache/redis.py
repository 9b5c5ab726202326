"""``redis://host:port/db`` (or ``rediss://`` for TLS): the result cache on Redis.

Keys: ``qaflow:result:v1:<question_id>`` (:data:`qaflow.cache.base.KEY_PREFIX`; the
``v1`` changes when the value's schema does, so old entries are simply never read).
Values: the :class:`ResultMessage` JSON, written with ``SET key value EX ttl``. A batch is one
round trip: ``MGET`` to read, a pipeline of ``SET ... EX`` (no MULTI) to write.

Redis down, or slow, never fails a request and never adds much latency:

- socket timeouts are short (0.5 s to connect and to read), with no retries;
- a failed call opens a circuit breaker for ``breaker_s`` (2 s): meanwhile every call
  skips Redis at once;
- a read then answers ``None`` (the caller falls through to the store) and a write is
  skipped; each is counted in ``stats.errors`` (not as a miss, so the hit rate
  describes the cache, not the outage), and logged at most once per ``log_every_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from qaflow.cache.base import KEY_PREFIX, CacheStats, key
from qaflow.core.messages import ResultMessage
from qaflow.plumbing.redis_client import connect, unreachable_errors

logger = logging.getLogger(__name__)

SOCKET_TIMEOUT_S = 0.5
BREAKER_S = 2.0
LOG_EVERY_S = 30.0
_FAILED = object()  # a call that did not reach Redis (as opposed to a reply of None)


class RedisCache:
    def __init__(
        self,
        url: str,
        prefix: str = KEY_PREFIX,
        *,
        socket_timeout_s: float = SOCKET_TIMEOUT_S,
        breaker_s: float = BREAKER_S,
        log_every_s: float = LOG_EVERY_S,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.stats = CacheStats()
        self.socket_timeout_s = socket_timeout_s
        self.breaker_s = breaker_s
        self.log_every_s = log_every_s
        self._client: Any = None
        self._errors: tuple[type[BaseException], ...] = ()
        self._open_until = 0.0  # circuit breaker: skip Redis until this monotonic time
        self._last_log = float("-inf")
        self._unlogged = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        """Build the client; connections open lazily, so a Redis that is down does not fail start-up."""
        self._errors = unreachable_errors()
        self._client = connect(self.url, timeout_s=self.socket_timeout_s, health_check_interval=30)

    def get(self, question_id: str) -> ResultMessage | None:
        raw = self._call("get", key(question_id, self.prefix))
        return None if raw is _FAILED else self._parse(question_id, raw)

    def get_many(self, question_ids: Sequence[str]) -> dict[str, ResultMessage]:
        if not question_ids:
            return {}
        raws = self._call("mget", [key(qid, self.prefix) for qid in question_ids])
        if raws is _FAILED:
            return {}
        return {qid: hit for qid, raw in zip(question_ids, raws, strict=True)
                if (hit := self._parse(qid, raw)) is not None}

    def _parse(self, question_id: str, raw: bytes | str | None) -> ResultMessage | None:
        """The cached result, counted as a hit; None (a miss) for no entry or one that is not a result."""
        result = None
        if raw is not None:
            try:
                result = ResultMessage.model_validate_json(raw)
            except ValidationError as exc:
                logger.warning("cache entry for question_id=%s is not a valid result, ignored: %s", question_id, exc)
        with self._lock:
            if result is None:
                self.stats.misses += 1
            else:
                self.stats.hits += 1
        return result

    def put(self, result: ResultMessage, ttl_s: int) -> None:
        done = self._call("set", key(result.question_id, self.prefix), result.model_dump_json(), ex=max(1, ttl_s))
        if done is not _FAILED:
            with self._lock:
                self.stats.writes += 1

    def put_many(self, results: Sequence[ResultMessage], ttl_s: int) -> None:
        if not results:
            return
        items = [(key(r.question_id, self.prefix), r.model_dump_json()) for r in results]

        def set_all(client: Any) -> list[Any]:
            pipe = client.pipeline(transaction=False)  # one round trip; each SET stands alone
            for k, value in items:
                pipe.set(k, value, ex=max(1, ttl_s))
            return list(pipe.execute())

        if self._guarded(set_all) is not _FAILED:
            with self._lock:
                self.stats.writes += len(results)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """The client's ``method``, behind the circuit breaker (see :meth:`_guarded`)."""
        return self._guarded(lambda client: getattr(client, method)(*args, **kwargs))

    def _guarded(self, call: Any) -> Any:
        """``call(client)``, or ``_FAILED`` (counted, logged) when Redis is unreachable or the breaker is open."""
        if self._client is None:
            msg = "RedisCache.start() was not called"
            raise RuntimeError(msg)
        if time.monotonic() < self._open_until:
            self._failed(None)
            return _FAILED
        try:
            return call(self._client)
        except self._errors as exc:
            self._open_until = time.monotonic() + self.breaker_s
            self._failed(exc)
            return _FAILED

    def _failed(self, exc: BaseException | None) -> None:
        now = time.monotonic()
        with self._lock:
            self.stats.errors += 1
            self._unlogged += 1
            if now - self._last_log < self.log_every_s:
                return
            self._last_log, skipped, self._unlogged = now, self._unlogged, 0
        reason = exc if exc is not None else "circuit open after an earlier failure"
        logger.warning(
            "redis %s unavailable, cache bypassed (%d call(s) since last report): %s", self.url_safe, skipped, reason
        )

    @property
    def url_safe(self) -> str:
        """The URL without its password, for logs."""
        scheme, _, rest = self.url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
