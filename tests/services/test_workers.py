"""The worker loops the services run: safe commits with N calls in flight, a store outage
waited out without committing, and the shutdown that abandons a batch uncommitted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from qaflow.bus.memory import MemoryBus
from qaflow.cache.memory import MemoryCache
from qaflow.core import topics
from qaflow.core.messages import Origin, QuestionMessage, ResultMessage, Status
from qaflow.pipeline.outputs import Output
from qaflow.pipeline.storage import StorageStage
from qaflow.pipeline.worker import ConcurrentWorker, Decoded, Worker
from qaflow.services.boot import Guarded
from qaflow.services.storage_writer.guard import StoreGuard
from qaflow.store.sqlite import SqliteStore

REFERENCE = "A reference answer."


def question(i: int) -> QuestionMessage:
    return QuestionMessage.new(f"Question number {i}?", "", REFERENCE)


def step_until(worker: Any, done: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "condition not reached"
        worker.step(0.05)


# --- ConcurrentWorker commits ---------------------------------------------------------------


def test_concurrent_worker_commits_only_up_to_the_lowest_unfinished_record(bus: MemoryBus) -> None:
    gates = {i: threading.Event() for i in range(6)}
    titles = {question(i).question_id: i for i in range(6)}

    def handle(q: QuestionMessage, origin: Origin) -> list[Output]:
        gates[titles[q.question_id]].wait(10)
        return [Output(topics.ANSWERS, q.question_id, b"{}")]

    producer = bus.producer()
    for i in range(6):
        producer.send(topics.QUESTIONS, "same-key", question(i).encode())  # one partition, offsets 0..5
    consumer = bus.consumer("llm", [topics.QUESTIONS])
    worker = ConcurrentWorker("llm", consumer, bus.producer(), handle, concurrency=6)
    worker.start()
    tp = (topics.QUESTIONS, 0)

    def committed() -> int | None:
        return bus.broker.committed["llm"].get(tp)

    try:
        worker.step(0.1)
        assert len(worker._running) == 6
        for i in (2, 3, 5):  # finish out of order
            gates[i].set()
        step_until(worker, lambda: len(worker._running) == 3)
        assert committed() in (None, 0)  # offsets 0 and 1 still run: nothing past them
        assert sum(bus.end_offsets(topics.ANSWERS)) == 3  # their answers are out already

        gates[0].set()
        step_until(worker, lambda: committed() == 1)
        gates[1].set()
        step_until(worker, lambda: committed() == 4)  # 2 and 3 were done: jump to the next unfinished
        gates[4].set()
        step_until(worker, lambda: committed() == 6)
        assert worker.idle
    finally:
        for g in gates.values():
            g.set()
        worker.close()


def test_a_crash_with_calls_in_flight_redelivers_them(bus: MemoryBus) -> None:
    gate = threading.Event()
    seen: list[int] = []

    def slow_for_first_two(q: QuestionMessage, origin: Origin) -> list[Output]:
        seen.append(origin.offset or 0)
        if (origin.offset or 0) < 2:
            gate.wait(10)
        return []

    producer = bus.producer()
    for i in range(4):
        producer.send(topics.QUESTIONS, "k", question(i).encode())
    worker = ConcurrentWorker("llm", bus.consumer("llm", [topics.QUESTIONS]), bus.producer(),
                              slow_for_first_two, concurrency=4)
    worker.start()
    step_until(worker, lambda: len(worker._running) == 2)  # offsets 2 and 3 finished
    assert bus.broker.committed["llm"].get((topics.QUESTIONS, 0)) in (None, 0)
    worker.consumer.close()  # the process dies: no drain, no commit
    gate.set()
    worker._pool.shutdown(wait=True)

    again = bus.consumer("llm", [topics.QUESTIONS])
    again.start()
    redelivered = [r.offset for r in again.poll(0.1, 10)]
    assert redelivered == [0, 1, 2, 3]  # nothing skipped; 2 and 3 are repeated (the score stage drops them)
    again.close()


def test_drain_finishes_in_flight_calls_and_commits_them(bus: MemoryBus) -> None:
    def handle(q: QuestionMessage, origin: Origin) -> list[Output]:
        time.sleep(0.2)
        return [Output(topics.ANSWERS, q.question_id, b"{}")]

    producer = bus.producer()
    for i in range(3):
        producer.send(topics.QUESTIONS, "k", question(i).encode())
    worker = ConcurrentWorker("llm", bus.consumer("llm", [topics.QUESTIONS]), bus.producer(), handle,
                              concurrency=3)
    looped = Guarded("llm", worker)
    looped.start()
    looped.step(0.0)
    looped.drain()  # SIGTERM path of run_worker
    assert bus.broker.committed["llm"][(topics.QUESTIONS, 0)] == 3
    assert sum(bus.end_offsets(topics.ANSWERS)) == 3
    looped.close()


# --- The storage writer's outage handling ---------------------------------------------------


class FlakyStore(SqliteStore):
    """SQLite that fails like an unreachable PostgreSQL for its first ``failures`` writes."""

    def __init__(self, url: str, failures: int) -> None:
        super().__init__(url)
        self.failures = failures
        self.attempts = 0

    def write(self, batch: Any) -> None:
        import psycopg2

        self.attempts += 1
        if self.attempts <= self.failures:
            msg = "could not connect to server: Connection refused"
            raise psycopg2.OperationalError(msg)
        super().write(batch)


def result(i: int) -> ResultMessage:
    q = question(i)
    return ResultMessage(question_id=q.question_id, status=Status.VALIDATED, title=q.title,
                         reference_answer=REFERENCE, answer="An answer.", score=0.9, best_generation=1,
                         generations=1, model="m", submitted_at=q.submitted_at)


def storage_worker(bus: MemoryBus, store: SqliteStore, guard: StoreGuard) -> Worker:
    stage = StorageStage(store, MemoryCache(), 60)

    def write(batch: list[Decoded]) -> list[Output]:
        guard.call(stage.handle_batch, [m for _, m in batch])
        return []

    return Worker("storage", bus.consumer("storage", [topics.RESULTS, topics.DEAD_LETTER]), bus.producer(), write,
                  inline_dead_letters=True)


def test_storage_retries_a_store_outage_and_commits_only_after_the_write(bus: MemoryBus, tmp_path: Any) -> None:
    store = FlakyStore(f"sqlite:///{tmp_path / 'q.db'}", failures=3)
    states: list[bool] = []
    guard = StoreGuard(store, threading.Event(), base_s=0.01, cap_s=0.02, on_state=states.append)
    bus.producer().send(topics.RESULTS, result(1).question_id, result(1).encode())
    worker = storage_worker(bus, store, guard)
    worker.start()
    assert worker.step(0.1) == 1
    assert store.attempts == 4
    assert states == [False, False, False, True]  # not ready during the outage, ready after
    assert store.get_result(result(1).question_id) is not None
    assert bus.broker.committed["storage"][(topics.RESULTS, 0)] == 1
    worker.close()
    store.close()


def test_storage_shutdown_during_an_outage_leaves_the_batch_uncommitted(bus: MemoryBus, tmp_path: Any) -> None:
    store = FlakyStore(f"sqlite:///{tmp_path / 'q.db'}", failures=10**6)
    stop = threading.Event()
    guard = StoreGuard(store, stop, base_s=0.05, cap_s=0.05)
    bus.producer().send(topics.RESULTS, result(2).question_id, result(2).encode())
    looped = Guarded("storage", storage_worker(bus, store, guard))
    looped.start()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    assert looped.step(0.1) == 0  # interrupted, not crashed
    assert time.monotonic() - started < 3
    assert store.attempts >= 2
    assert (topics.RESULTS, 0) not in bus.broker.committed["storage"]  # delivered again after a restart
    looped.close()
    store.close()
