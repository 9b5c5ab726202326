"""Real servers for integration tests: started once per session (per xdist worker), lazily.

A server starts only when a test asks for it. When its binary or jar is missing, tests skip
with the reason, except under CI (``CI`` set) or ``QAFLOW_REQUIRE_SERVERS=1``, where they fail.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

import pytest

from qaflow.core.errors import MissingExtraError
from qaflow.devstack import KafkaServer, MissingBinaryError, PostgresServer, RedisServer
from qaflow.devstack.process import ServerProcess

S = TypeVar("S", bound=ServerProcess)


def _servers_required() -> bool:
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return ci or os.environ.get("QAFLOW_REQUIRE_SERVERS") == "1"


class _Checkable(Protocol):
    def check(self) -> None: ...


def _require(servers: _Checkable) -> None:
    """Skip (or fail under CI) when ``servers.check()`` finds something not installed."""
    try:
        servers.check()
    except (MissingBinaryError, MissingExtraError) as exc:
        reason = str(exc)
    else:
        return
    if _servers_required():
        pytest.fail(f"{reason} (servers are required under CI / QAFLOW_REQUIRE_SERVERS=1)", pytrace=False)
    pytest.skip(reason)


def _serve(server: S) -> Iterator[S]:
    _require(server)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kafka_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaServer]:
    server = KafkaServer(tmp_path_factory.mktemp("kafka"))
    yield from _serve(server)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("postgres"))
    yield from _serve(server)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield from _serve(server)


@pytest.fixture(scope="session")
def require_servers() -> Callable[[_Checkable], None]:
    """For tests that start servers themselves: ``require_servers(DevStack(path))`` skips,
    or fails under CI, when a server there could not start for want of an install."""
    return _require


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """Short, unique per test: ``<test name slug>_<8 hex>``, lower-case letters, digits, ``_``.

    Valid as a Kafka topic or group name, a Redis key prefix and a PostgreSQL identifier.
    """
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:20].rstrip("_")
    return f"{slug or 't'}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def kafka_bootstrap(kafka_server: KafkaServer) -> str:
    """``127.0.0.1:<port>`` of the session's broker. Topics are not auto-created."""
    return kafka_server.bootstrap


@pytest.fixture
def pg_url(postgres_server: PostgresServer, unique_name: str) -> Iterator[str]:
    """URL of a database created for this test and dropped after it."""
    name = f"qa_{unique_name}"
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the session's Redis (database 0). Use ``redis_prefix`` for the keys."""
    return redis_server.url


@pytest.fixture
def redis_prefix(redis_server: RedisServer, unique_name: str) -> Iterator[str]:
    """``<unique_name>:``; the keys under it are deleted after the test."""
    import redis

    prefix = f"{unique_name}:"
    yield prefix
    client = redis.Redis.from_url(redis_server.url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
