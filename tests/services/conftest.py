"""Fixtures the service-loop tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qaflow.bus.memory import MemoryBus
from qaflow.devstack import KafkaServer
from tests.conftest import _require


@pytest.fixture
def bus(request: pytest.FixtureRequest) -> Iterator[MemoryBus]:
    """An in-memory bus of the test's own (named after the test, one partition), emptied before and after."""
    name = request.node.name[:40]
    MemoryBus.reset(name)
    b = MemoryBus(f"memory://{name}", partitions=1)
    b.start()
    yield b
    MemoryBus.reset(name)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[KafkaServer]:
    """A Kafka broker of the test's own, for tests that stop it (the session's is shared)."""
    server = KafkaServer(tmp_path / "kafka")
    _require(server)
    server.start()
    yield server
    server.stop()
