"""The cache contract (qaflow.cache.base), checked on the in-process cache and on a real Redis."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from qaflow.cache.base import KEY_PREFIX
from qaflow.cache.memory import MemoryCache
from qaflow.core.ids import question_id
from qaflow.core.messages import ResultMessage, Status

OpenCache = Callable[[str], Any]  # prefix -> a started cache


def result(title: str, score: float = 0.9) -> ResultMessage:
    return ResultMessage(
        question_id=question_id(title),
        status=Status.VALIDATED,
        title=title,
        reference_answer="ref",
        answer="an answer",
        score=score,
        best_generation=1,
        generations=1,
        submitted_at=1_700_000_000.0,
    )


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def open_cache(request: pytest.FixtureRequest) -> Iterator[OpenCache]:
    opened: list[Any] = []
    if request.param == "memory":
        shared: dict[str, MemoryCache] = {}

        def opener(prefix: str) -> Any:
            # One in-process cache per prefix: that is what a prefix isolates.
            cache = shared.setdefault(prefix, MemoryCache())
            opened.append(cache)
            return cache

    else:
        from qaflow.cache.redis import RedisCache

        url = request.getfixturevalue("redis_url")
        base = request.getfixturevalue("redis_prefix")

        def opener(prefix: str) -> Any:
            cache = RedisCache(url, prefix=f"{base}{prefix}")
            cache.start()
            opened.append(cache)
            return cache

    yield opener
    for cache in opened:
        cache.close()


def test_put_then_get(open_cache: OpenCache) -> None:
    cache = open_cache(KEY_PREFIX)
    r = result("What is cached?")
    assert cache.get(r.question_id) is None
    cache.put(r, ttl_s=60)
    assert cache.get(r.question_id) == r
    cache.put(result("What is cached?", 0.95), ttl_s=60)
    assert cache.get(r.question_id).score == 0.95  # a later put replaces
    assert (cache.stats.hits, cache.stats.misses, cache.stats.writes, cache.stats.errors) == (2, 1, 2, 0)
    assert cache.stats.hit_rate == pytest.approx(2 / 3)


def test_entries_expire_after_their_ttl(open_cache: OpenCache) -> None:
    cache = open_cache(KEY_PREFIX)
    short, long = result("Short-lived"), result("Long-lived")
    cache.put(short, ttl_s=1)
    cache.put(long, ttl_s=60)
    assert cache.get(short.question_id) == short
    time.sleep(1.3)
    assert cache.get(short.question_id) is None
    assert cache.get(long.question_id) == long


def test_prefixes_isolate_caches(open_cache: OpenCache) -> None:
    a, b = open_cache("a:"), open_cache("b:")
    r = result("Whose entry?")
    a.put(r, ttl_s=60)
    assert a.get(r.question_id) == r
    assert b.get(r.question_id) is None


def test_a_batch_reads_and_writes_as_single_calls_do(open_cache: OpenCache) -> None:
    cache = open_cache("batch:")
    rs = [result(f"Batched {i}?") for i in range(5)]
    cache.put_many(rs[:3], ttl_s=60)
    assert cache.get_many([r.question_id for r in rs]) == {r.question_id: r for r in rs[:3]}
    assert cache.get(rs[0].question_id) == rs[0]
    assert cache.get_many([]) == {}
    cache.put_many([], ttl_s=60)
    assert (cache.stats.hits, cache.stats.misses, cache.stats.writes, cache.stats.errors) == (4, 2, 3, 0)


@pytest.mark.integration
def test_redis_batches_are_one_round_trip_each(redis_url: str, redis_prefix: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``get_many`` is one MGET and ``put_many`` one pipelined write, whatever the batch size."""
    from redis.connection import Connection

    from qaflow.cache.redis import RedisCache

    sends: list[int] = []
    real_send = Connection.send_packed_command

    def counted(self: Connection, command: Any, check_health: bool = True) -> None:
        sends.append(1)
        real_send(self, command, check_health)

    cache = RedisCache(redis_url, prefix=f"{redis_prefix}trips:")
    cache.start()
    try:
        cache.get("warm")  # the connection's own handshake is not the batch's
        monkeypatch.setattr(Connection, "send_packed_command", counted)
        rs = [result(f"Round trip {i}?") for i in range(50)]
        cache.put_many(rs, ttl_s=60)
        assert len(sends) == 1
        assert cache.get_many([r.question_id for r in rs]) == {r.question_id: r for r in rs}
        assert len(sends) == 2
    finally:
        cache.close()


def test_redis_down_batches_are_misses_and_skipped_writes() -> None:
    from qaflow.cache.redis import RedisCache

    cache = RedisCache(f"redis://127.0.0.1:{_closed_port()}/0", prefix="down:", breaker_s=5.0)
    cache.start()
    try:
        rs = [result(f"Down {i}?") for i in range(3)]
        cache.put_many(rs, ttl_s=60)
        assert cache.get_many([r.question_id for r in rs]) == {}
        assert (cache.stats.hits, cache.stats.misses, cache.stats.writes, cache.stats.errors) == (0, 0, 0, 2)
    finally:
        cache.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens


def test_redis_down_is_a_fast_miss_never_an_error(caplog: pytest.LogCaptureFixture) -> None:
    """Runs without a server: a dead Redis answers misses, swallows writes and counts errors."""
    from qaflow.cache.redis import RedisCache

    caplog.set_level(logging.WARNING, logger="qaflow.cache.redis")

    cache = RedisCache(f"redis://127.0.0.1:{_closed_port()}/0", prefix="down:", breaker_s=0.2)
    cache.start()
    try:
        r = result("Is anybody there?")
        slowest = 0.0
        for i in range(6):
            t0 = time.monotonic()
            assert cache.get(r.question_id) is None
            cache.put(r, ttl_s=60)
            slowest = max(slowest, time.monotonic() - t0)
            if i == 2:
                time.sleep(0.25)  # let the breaker close, so Redis is really tried again
        assert slowest < 0.5, f"a call with Redis down took {slowest:.3f}s"
        assert cache.stats.errors == 12
        assert (cache.stats.hits, cache.stats.misses, cache.stats.writes) == (0, 0, 0)
        assert len(caplog.records) == 1, "the outage is logged once per interval, not once per call"
    finally:
        cache.close()


def test_redis_that_never_answers_costs_one_timeout_then_is_skipped() -> None:
    """A Redis that accepts connections but never replies (hung, or a black hole behind a
    proxy): the first call waits one short socket timeout, then the breaker skips Redis."""
    from qaflow.cache.redis import RedisCache

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes handshakes; nobody ever reads or replies
        port = silent.getsockname()[1]
        cache = RedisCache(f"redis://127.0.0.1:{port}/0", prefix="hung:", socket_timeout_s=0.3, breaker_s=5.0)
        cache.start()
        try:
            t0 = time.monotonic()
            assert cache.get(question_id("Anyone?")) is None
            first = time.monotonic() - t0
            t0 = time.monotonic()
            for _ in range(20):
                assert cache.get(question_id("Anyone?")) is None
                cache.put(result("Anyone?"), ttl_s=60)
            rest = time.monotonic() - t0
        finally:
            cache.close()
    assert 0.25 <= first < 1.0, f"first call took {first:.3f}s; expected about one 0.3 s timeout"
    assert rest < 0.05, f"the open breaker must skip Redis at once; 40 calls took {rest:.3f}s"
    assert cache.stats.errors == 41
