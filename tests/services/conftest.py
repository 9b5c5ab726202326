"""Fixtures the service-loop tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qaflow.bus.memory import MemoryBus


@pytest.fixture
def bus(request: pytest.FixtureRequest) -> Iterator[MemoryBus]:
    """An in-memory bus of the test's own (named after the test, one partition), emptied before and after."""
    name = request.node.name[:40]
    MemoryBus.reset(name)
    b = MemoryBus(f"memory://{name}", partitions=1)
    b.start()
    yield b
    MemoryBus.reset(name)
