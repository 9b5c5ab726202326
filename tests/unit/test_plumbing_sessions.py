"""The shared thread-local session pool (qaflow.plumbing.sessions): one session per thread,
headers and adapter on each, all closed together, fresh ones after close."""

from __future__ import annotations

import threading

import requests
from requests.adapters import HTTPAdapter

from qaflow.plumbing.sessions import SessionPool


def _in_thread(pool: SessionPool) -> requests.Session:
    out: list[requests.Session] = []
    t = threading.Thread(target=lambda: out.append(pool.session()))
    t.start()
    t.join()
    return out[0]


def test_one_session_per_thread_reused_within_a_thread() -> None:
    pool = SessionPool()
    try:
        mine = pool.session()
        assert pool.session() is mine
        other = _in_thread(pool)
        assert other is not mine
    finally:
        pool.close()


def test_headers_and_adapter_are_set_on_every_session() -> None:
    built: list[HTTPAdapter] = []

    def adapter() -> HTTPAdapter:
        built.append(HTTPAdapter(max_retries=0))
        return built[-1]

    pool = SessionPool(headers={"X-API-Key": "k"}, adapter=adapter)
    try:
        sessions = [pool.session(), _in_thread(pool)]
        assert len(built) == 2
        for session, own in zip(sessions, built, strict=True):
            assert session.headers["X-API-Key"] == "k"
            assert session.get_adapter("http://x/") is own
            assert session.get_adapter("https://x/") is own
    finally:
        pool.close()


def test_close_closes_every_thread_session_and_later_calls_get_fresh_ones() -> None:
    closed: list[requests.Session] = []
    pool = SessionPool()
    sessions = [pool.session(), _in_thread(pool)]
    for s in sessions:
        original = s.close
        s.close = lambda s=s, original=original: (closed.append(s), original())  # type: ignore[method-assign]
    pool.close()
    assert closed == sessions
    fresh = pool.session()
    assert fresh is not sessions[0]
    pool.close()
