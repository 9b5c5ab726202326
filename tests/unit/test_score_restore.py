"""Rebuilding the score stage's duplicate check from its own outputs (core/score_restore.py),
and the worker hook that calls it before re-delivered records are handled (pipeline/worker.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from qaflow.bus.base import Record
from qaflow.bus.memory import MemoryBus
from qaflow.core import topics
from qaflow.core.errors import BusError
from qaflow.core.messages import AnswerMessage, Origin, QuestionMessage, ResultMessage, Status
from qaflow.core.outputs import dead_letter
from qaflow.core.routing import QuestionState
from qaflow.core.score_restore import RESTORE_TOPICS, fold_outputs
from qaflow.core.score_step import GatePolicy
from qaflow.pipeline.score import ScoreStage
from qaflow.pipeline.worker import RESTORE_MARGIN_MS, Worker
from tests.unit.test_stages import TableScorer

REFERENCE = "Sunlight scatters off air molecules."


def question(i: int, generation: int = 1) -> QuestionMessage:
    q = QuestionMessage.new(f"Restore {i}?", "", REFERENCE)
    return q.model_copy(update={"generation": generation})


def result_of(q: QuestionMessage) -> ResultMessage:
    return ResultMessage(question_id=q.question_id, status=Status.VALIDATED, title=q.title, reference_answer=REFERENCE,
                         answer="a", score=0.9, best_generation=1, generations=1, model="m",
                         submitted_at=q.submitted_at)


def test_each_output_moves_its_question_forward_and_nothing_else() -> None:
    ended, failed, again, first, poisoned = question(1), question(2), question(3, 3), question(4), question(5)
    dl = dead_letter("scoring failed", "score", Origin(topic=topics.ANSWERS), question=failed)
    bare = dead_letter("invalid record", "llm", Origin(topic=topics.QUESTIONS), payload=b"{")
    state: dict[str, QuestionState] = {poisoned.question_id: QuestionState(last_generation=4)}
    stats = fold_outputs(state, [
        (topics.RESULTS, ended.question_id, result_of(ended).encode()),
        (topics.DEAD_LETTER, failed.question_id, dl.value),
        (topics.DEAD_LETTER, None, bare.value),  # no question: nothing ends
        (topics.QUESTIONS, again.question_id, again.encode()),
        (topics.QUESTIONS, first.question_id, first.encode()),  # generation 1: nothing was routed
        (topics.QUESTIONS, poisoned.question_id, question(5, 2).encode()),  # behind what is known: kept
        (topics.QUESTIONS, "x", b"not json"),
        (topics.SCORES, "y", b"ignored"),
    ])
    assert state[ended.question_id] == QuestionState(terminal=True)
    assert state[failed.question_id] == QuestionState(terminal=True)
    assert state[again.question_id] == QuestionState(last_generation=2)
    assert state[poisoned.question_id] == QuestionState(last_generation=4)
    assert first.question_id not in state
    assert (stats.records, stats.ended, stats.advanced, stats.skipped) == (7, 2, 1, 1)


def test_an_ended_question_stays_ended_whatever_comes_after() -> None:
    q = question(1)
    state = {q.question_id: QuestionState(last_generation=1, terminal=True)}
    fold_outputs(state, [(topics.QUESTIONS, q.question_id, question(1, 3).encode())])
    assert state[q.question_id].terminal


def answers(n: int) -> list[AnswerMessage]:
    return [AnswerMessage(question=question(i), answer=f"answer {i}", model="m", provider="p", latency_ms=1)
            for i in range(n)]


def score_worker(bus: MemoryBus, *, restore: bool, calls: list[int] | None = None,
                 max_records: int = 4) -> tuple[Worker, ScoreStage]:
    stage = ScoreStage(TableScorer({f"answer {i}": 0.9 for i in range(100)}), GatePolicy(0.8, 3))

    def fold(since_ms: int, last_commit_ms: int | None) -> None:
        assert last_commit_ms is None  # the memory bus records no commit times
        if calls is not None:
            calls.append(since_ms)
        fold_outputs(stage.state, ((r.topic, r.key, r.value) for r in bus.read_since(RESTORE_TOPICS, since_ms)))

    worker = Worker("score", bus.consumer("score", [topics.ANSWERS]), bus.producer(),
                    lambda batch: stage.handle_batch([m for _, m in batch]), max_records=max_records,
                    commit_interval_s=3600.0, restore=fold if restore else None)
    worker.start()
    return worker, stage


@pytest.mark.parametrize("restore", [True, False])
def test_a_successor_ends_no_question_twice_only_with_the_restore(restore: bool) -> None:
    bus = MemoryBus(f"memory://restore-{restore}")
    bus.start()
    try:
        producer = bus.producer()
        for a in answers(8):
            producer.send(topics.ANSWERS, a.question_id, a.encode())
        crashed, _ = score_worker(bus, restore=restore)
        crashed.step(0)
        crashed.flush_outbox()  # outputs out, offsets not committed (the interval)
        crashed.consumer.close()  # a crash: no commit
        successor, stage = score_worker(bus, restore=restore)
        while successor.step(0):
            pass
        ends = Counter(r.key for r in bus.read_since([topics.RESULTS], 0))
        assert len(ends) == 8
        if restore:
            assert set(ends.values()) == {1}
            assert stage.stats.duplicates == 4
        else:  # what the restore prevents
            assert sorted(ends.values()) == [1] * 4 + [2] * 4
        successor.close()
    finally:
        MemoryBus.reset(f"restore-{restore}")


def test_the_restore_runs_once_per_assignment_from_the_first_records_time_less_the_margin() -> None:
    bus = MemoryBus("memory://restore-once")
    bus.start()
    try:
        producer = bus.producer()
        for a in answers(8):
            producer.send(topics.ANSWERS, a.question_id, a.encode())
        first_stamp = min(r.timestamp_ms for r in bus.read_since([topics.ANSWERS], 0))
        calls: list[int] = []
        worker, _ = score_worker(bus, restore=True, calls=calls, max_records=100)
        while worker.step(0):
            pass
        assert calls == [first_stamp - RESTORE_MARGIN_MS]  # nothing committed: the first record's time
        assert worker.restores == 1
        for a in answers(3):  # later records of partitions already restored: no read
            producer.send(topics.ANSWERS, a.question_id, a.encode())
        while worker.step(0):
            pass
        assert worker.restores == 1
        worker.close()
    finally:
        MemoryBus.reset("restore-once")


def test_a_failed_restore_puts_the_records_back_and_raises() -> None:
    bus = MemoryBus("memory://restore-fails")
    bus.start()
    try:
        producer = bus.producer()
        for a in answers(4):
            producer.send(topics.ANSWERS, a.question_id, a.encode())
        tries: list[int] = []

        def flaky(since_ms: int, last_commit_ms: int | None) -> None:
            tries.append(since_ms)
            if len(tries) == 1:
                msg = "broker away (test)"
                raise BusError(msg, retriable=True)

        stage = ScoreStage(TableScorer({f"answer {i}": 0.9 for i in range(4)}), GatePolicy(0.8, 3))
        handled: list[Any] = []
        worker = Worker("score", bus.consumer("score", [topics.ANSWERS]), bus.producer(),
                        lambda batch: handled.extend(batch) or stage.handle_batch([m for _, m in batch]),
                        max_records=4, restore=flaky)
        worker.start()
        with pytest.raises(BusError):
            worker.step(0)
        assert handled == []
        while worker.step(0):
            pass
        assert len(tries) == 2 and len(handled) == 4  # polled again, restored, handled once
        worker.close()
    finally:
        MemoryBus.reset("restore-fails")


class _Stamped:
    """A memory consumer whose partitions have commit times, as Kafka commit metadata gives them."""

    def __init__(self, inner: Any, stamps: dict[tuple[str, int], int]) -> None:
        self.inner, self.stamps = inner, stamps

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def committed_ms(self, partitions: Any) -> dict[tuple[str, int], int]:
        return {tp: self.stamps[tp] for tp in partitions if tp in self.stamps}


def test_a_read_bounded_by_one_partitions_commit_does_not_cover_a_later_one() -> None:
    bus = MemoryBus("memory://restore-bounded")
    bus.start()
    try:
        inner = bus.consumer("score", [topics.ANSWERS])
        inner.start()
        a, b = (topics.ANSWERS, 0), (topics.ANSWERS, 1)
        assert {a, b} <= inner.assignment()
        calls: list[tuple[int, int | None]] = []
        worker = Worker("score", _Stamped(inner, {a: 2_000_000, b: 9_000_000}), bus.producer(), lambda batch: [],
                        restore=lambda since, last: calls.append((since, last)))
        worker._restore_before([Record(a[0], a[1], 0, "k", b"{}", 1_000_000)])
        worker._restore_before([Record(b[0], b[1], 0, "k", b"{}", 1_000_000)])
        assert calls == [(2_000_000 - RESTORE_MARGIN_MS, 2_000_000), (9_000_000 - RESTORE_MARGIN_MS, 9_000_000)]
        worker._restore_before([Record(a[0], a[1], 1, "k", b"{}", 1_000_000)])
        assert len(calls) == 2  # a partition restored since its assignment is not read again
    finally:
        MemoryBus.reset("restore-bounded")
