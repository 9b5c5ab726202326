"""The api's PostgreSQL pool follows its gunicorn worker's concurrency (issue 13, item 1)."""

from __future__ import annotations

import pytest
from gunicorn.config import Config

from qaflow.core.settings import ApiSettings
from qaflow.services.api.backends import MAX_POOL_SIZE, POOL_SIZE, ApiBackends
from qaflow.services.web.gunicorn_hooks import concurrency
from qaflow.store.postgres import split_url


@pytest.mark.parametrize(
    ("worker_class", "threads", "expected"),
    [("gthread", 6, 6), ("sync", 1, 1), ("gevent", 1, 1000),
     ("qaflow.services.web.gunicorn_worker.QaflowGeventWorker", 1, 1000)],
)
def test_concurrency_is_threads_or_async_connections(worker_class: str, threads: int, expected: int) -> None:
    cfg = Config()
    cfg.set("worker_class", worker_class)
    cfg.set("threads", threads)
    assert concurrency(cfg) == expected


def test_the_pool_is_sized_by_concurrency_within_bounds() -> None:
    backends = ApiBackends(ApiSettings(store_url="postgresql://u@db/qa"))
    assert backends.pool_size == POOL_SIZE
    backends.set_concurrency(6)
    assert backends.pool_size == 6
    backends.set_concurrency(1000)
    assert backends.pool_size == MAX_POOL_SIZE
    backends.set_concurrency(0)
    assert backends.pool_size == 1
    assert split_url("postgresql://u@db/qa")[1:] == (1, 8)  # other processes: the URL's defaults
