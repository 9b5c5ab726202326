"""Worker.commit_interval_s (issue 13, item 2): fewer commits, none lost on idle, drain or close."""

from __future__ import annotations

from typing import Any

from qaflow.bus.memory import MemoryBus
from qaflow.core import topics
from qaflow.pipeline.worker import Worker
from tests.unit.doubles import seeded_bus


def setup(name: str, n: int) -> tuple[MemoryBus, Worker]:
    bus = seeded_bus(name, n)
    worker = Worker("test", bus.consumer("g", [topics.QUESTIONS]), bus.producer(), lambda batch: [], max_records=2)
    worker.start()
    return bus, worker


def committed(bus: MemoryBus) -> Any:
    return bus.broker.committed["g"].get((topics.QUESTIONS, 0))


def test_default_commits_after_every_step() -> None:
    bus, worker = setup("commit-every-step", 4)
    worker.step(0)
    assert committed(bus) == 2
    worker.close()


def test_an_interval_defers_commits_until_idle_or_close() -> None:
    bus, worker = setup("commit-interval", 6)
    worker.commit_interval_s = 3600.0
    worker.step(0)
    worker.step(0)
    assert committed(bus) is None  # within the interval: waiting
    worker.step(0)
    assert worker.step(0) == 0  # nothing left: what waited is committed
    assert committed(bus) == 6
    bus2, worker2 = setup("commit-interval-close", 2)
    worker2.commit_interval_s = 3600.0
    worker2.step(0)
    assert committed(bus2) is None
    worker2.close()
    assert committed(bus2) == 2
    worker.close()


def test_an_elapsed_interval_commits_at_once() -> None:
    bus, worker = setup("commit-interval-elapsed", 4)
    worker.commit_interval_s = 3600.0
    worker.step(0)
    worker._last_commit -= 3600.0
    worker.step(0)
    assert committed(bus) == 4
    worker.close()
