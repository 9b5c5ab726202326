"""The api keeps its PostgreSQL connections under concurrent POSTs (issue 13, item 1).

psycopg2's ThreadedConnectionPool with ``pool_min=1`` closed every returned connection
beyond the first, so a busy api opened a new PostgreSQL session for most requests
(1,114-1,192 per 1,500). Here one gunicorn worker takes concurrent new POSTs while a
separate connection samples ``pg_stat_activity`` for the api's sessions in the test's own
database: every session seen must be one of the pool's, opened once and still open at the end.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from qaflow.services.api.backends import MAX_POOL_SIZE
from tests.pg import pg_rows
from tests.services.test_api_gunicorn import Gunicorn

pytestmark = pytest.mark.integration

REFERENCE = "Rayleigh scattering of sunlight by the air favours short, blue wavelengths."
CLIENTS = 32  # concurrent requests, above the pool's size
REQUESTS = 480
SESSIONS = ("SELECT pid, backend_start FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'qaflow' AND pid <> pg_backend_pid()")


def test_concurrent_posts_reuse_the_pool_s_sessions(tmp_path: Path, unique_name: str, pg_url: str,
                                                    redis_url: str, kafka_bootstrap: str) -> None:
    env = {"QAFLOW_BUS_URL": f"kafka://{kafka_bootstrap}", "QAFLOW_STORE_URL": pg_url,
           "QAFLOW_CACHE_URL": redis_url, "QAFLOW_TOPIC_PREFIX": f"{unique_name}."}
    api = Gunicorn("api", env, tmp_path, "--workers", "1")
    seen: set[tuple[int, object]] = set()
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen.update((pid, started) for pid, started in pg_rows(pg_url, SESSIONS))
            time.sleep(0.005)

    try:
        api.start(ready_path="/readyz", timeout_s=90)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        def ask(i: int) -> int:
            title = f"question {i} about the sky [{unique_name}]"
            reply = requests.post(api.url + "/v1/questions", json={"title": title, "reference_answer": REFERENCE},
                                  timeout=30)
            return reply.status_code

        with ThreadPoolExecutor(CLIENTS) as pool:
            codes = list(pool.map(ask, range(REQUESTS)))
        stop.set()
        sampler.join(10)
        at_end = set(pg_rows(pg_url, SESSIONS))
    finally:
        stop.set()
        api.stop()

    assert codes.count(202) == REQUESTS, {c: codes.count(c) for c in set(codes)}
    assert seen, "no api session was ever seen"
    assert len(seen) <= MAX_POOL_SIZE, f"{len(seen)} PostgreSQL sessions for {REQUESTS} POSTs: connections not kept"
    assert seen <= at_end, f"{len(seen - at_end)} session(s) closed during the run"
