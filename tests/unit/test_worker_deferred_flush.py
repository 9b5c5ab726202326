"""With a commit interval a step sends its outputs at once and waits for none of them: the
flush, and the commit behind it, come once per interval (or when idle, or on close); a failed
flush sends the whole outbox again before anything new is polled, and nothing is committed
past it (issue 13, item 2)."""

from __future__ import annotations

from typing import Any

from qaflow.bus.memory import MemoryBus
from qaflow.core import topics
from qaflow.core.errors import DeliveryError
from qaflow.pipeline.outputs import Output
from qaflow.pipeline.worker import Worker
from tests.unit.doubles import CountingProducer, seeded_bus

OUT = "copy"


def setup(name: str, n: int, fail_flushes: int = 0) -> tuple[MemoryBus, Worker, CountingProducer]:
    bus = seeded_bus(name, n)
    producer = CountingProducer(bus.producer(), fail_flushes)
    worker = Worker("copy", bus.consumer("g", [topics.QUESTIONS]), producer,
                    lambda batch: [Output(OUT, rec.key, rec.value) for rec, _ in batch],
                    max_records=2, commit_interval_s=3600.0)
    worker.start()
    return bus, worker, producer


def committed(bus: MemoryBus) -> Any:
    return bus.broker.committed["g"].get((topics.QUESTIONS, 0))


def test_outputs_go_out_at_once_and_one_flush_covers_the_interval() -> None:
    bus, worker, producer = setup("deferred-flush", 6)
    try:
        for _ in range(3):
            assert worker.step(0) == 2
        assert sum(bus.end_offsets(OUT)) == 6  # sent without waiting
        assert producer.flushes == 0 and committed(bus) is None
        assert worker.idle  # nothing waits to be sent: a loop need not wait on the acknowledgements
        assert worker.step(0) == 0  # idle: one flush, then the commit behind it
        assert producer.flushes == 1 and committed(bus) == 6
    finally:
        worker.close()


def test_a_failed_flush_sends_the_outbox_again_and_commits_nothing_past_it() -> None:
    bus, worker, producer = setup("deferred-flush-fails", 4, fail_flushes=1)
    try:
        worker.step(0)
        worker.step(0)
        try:
            worker.step(0)  # idle: the flush fails
        except DeliveryError:
            pass
        else:
            raise AssertionError("the failed flush was not raised")
        assert committed(bus) is None
        assert not worker.idle  # the outbox must be sent again
        worker.step(0)  # sends all 4 again before polling, flushes, commits
        assert producer.sends == 8
        assert producer.flushes == 2 and committed(bus) == 4
    finally:
        worker.close()


def test_close_flushes_and_commits_what_was_sent() -> None:
    bus, worker, producer = setup("deferred-flush-close", 2)
    worker.step(0)
    assert producer.flushes == 0 and committed(bus) is None
    worker.close()
    assert producer.flushes == 1 and committed(bus) == 2
