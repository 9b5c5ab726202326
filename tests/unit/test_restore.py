"""The questions the llm and retry stages ended, rebuilt from qa.dead-letter (core/restore.py), and
the workers that read them back before re-delivered records are handled (services/ended.py with
the ConcurrentWorker and RetryWorker restore hook), on the memory bus."""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest

from qaflow.bus.memory import MemoryBus
from qaflow.core import topics
from qaflow.core.errors import ErrorClass, PermanentLlmError
from qaflow.core.messages import AnswerMessage, Origin, QuestionMessage, RetryMessage
from qaflow.core.outputs import Output, dead_letter
from qaflow.core.restore import EndedQuestions, first_ends, fold_dead_letters
from qaflow.core.retry import RetryPolicy, release
from qaflow.llm.base import LlmReply, LlmRequest
from qaflow.pipeline.answer import AnswerStage
from qaflow.pipeline.retry_worker import RetryWorker
from qaflow.pipeline.worker import ConcurrentWorker
from qaflow.services.ended import answer_once, dead_letter_restore, release_once

REFERENCE = "Sunlight scatters off air molecules."
ORIGIN = Origin(topic=topics.QUESTIONS)


def question(i: int, generation: int = 1) -> QuestionMessage:
    return QuestionMessage.new(f"Ended {i}?", "", REFERENCE).model_copy(update={"generation": generation})


def test_a_dead_letter_carrying_a_question_ends_it_and_nothing_else_does() -> None:
    failed, later, answered = question(1), question(2, 3), question(3)
    ended = EndedQuestions()
    stats = fold_dead_letters(ended, [
        (topics.DEAD_LETTER, failed.question_id, dead_letter("permanent", "llm", ORIGIN, question=failed).value),
        (topics.DEAD_LETTER, later.question_id, dead_letter("gave up", "retry", ORIGIN, question=later).value),
        (topics.DEAD_LETTER, failed.question_id, dead_letter("again", "llm", ORIGIN, question=failed).value),
        (topics.DEAD_LETTER, None, dead_letter("invalid record", "llm", ORIGIN, payload=b"{").value),  # no question
        (topics.DEAD_LETTER, "x", b"not json"),
        (topics.DEAD_LETTER, "y", b'{"question": {"question_id": 7}}'),
        (topics.ANSWERS, answered.question_id,
         AnswerMessage(question=answered, answer="a", model="m", provider="p", latency_ms=1).encode()),
        (topics.RESULTS, answered.question_id, b"{}"),  # results are the score stage's: not read
    ])
    assert failed.question_id in ended and later.question_id in ended
    assert answered.question_id not in ended and len(ended) == 2
    assert (stats.records, stats.ended, stats.skipped) == (6, 2, 2)


def test_only_the_first_dead_letter_of_a_question_is_kept() -> None:
    q, other = question(1), question(2)
    ended = EndedQuestions()
    call = Output.of(topics.CALLS, q, q.question_id)  # any other output passes
    first = dead_letter("permanent", "llm", ORIGIN, question=q)
    bare = dead_letter("invalid record", "llm", ORIGIN, payload=b"{", key=q.question_id)
    assert first_ends(ended, [first, call]) == ([first, call], 0)
    assert first_ends(ended, [dead_letter("again", "llm", ORIGIN, question=q), call, bare]) == ([call, bare], 1)
    assert first_ends(ended, [dead_letter("x", "retry", ORIGIN, question=other)])[1] == 0


def test_the_oldest_ended_questions_are_forgotten_past_the_capacity() -> None:
    ended = EndedQuestions(capacity=2)
    assert ended.end("a") and ended.end("b") and not ended.end("a")
    assert ended.end("c")
    assert "a" not in ended and "b" in ended and "c" in ended and len(ended) == 2
    with pytest.raises(ValueError, match="capacity"):
        EndedQuestions(capacity=0)


def test_of_two_copies_failing_at_once_one_dead_letter_goes_out() -> None:
    ended = EndedQuestions()
    q = question(1)
    barrier = threading.Barrier(8)
    kept: list[int] = []

    def fail() -> None:
        barrier.wait()
        kept.append(len(first_ends(ended, [dead_letter("permanent", "llm", ORIGIN, question=q)])[0]))

    threads = [threading.Thread(target=fail) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(kept) == [0] * 7 + [1]


class Refusing:
    """An LLM that refuses every call (permanent error); the call for ``hold`` waits for ``go``."""

    name = "refusing"

    def __init__(self, hold: str, go: threading.Event) -> None:
        self.hold, self.go, self.calls = hold, go, Counter[str]()

    def generate(self, request: LlmRequest) -> LlmReply:
        self.calls[request.question_id] += 1
        if request.question_id == self.hold:
            self.go.wait(10)
        msg = "400: refused (test)"
        raise PermanentLlmError(msg)


def llm_worker(bus: MemoryBus, provider: Refusing, *, restore: bool) -> ConcurrentWorker:
    stage = AnswerStage(provider, RetryPolicy(), rng=random.Random(0))
    ended = EndedQuestions()
    worker = ConcurrentWorker("llm", bus.consumer("llm", [topics.QUESTIONS]), bus.producer(),
                              answer_once(stage.handle, ended, "llm") if restore else stage.handle,
                              concurrency=8, restore=dead_letter_restore(bus, ended, "llm") if restore else None)
    worker.start()
    return worker


@pytest.mark.parametrize("restore", [True, False])
def test_an_llm_worker_successor_dead_letters_no_question_twice_only_with_the_restore(restore: bool) -> None:
    name = f"ended-llm-{restore}"
    bus = MemoryBus(f"memory://{name}", partitions=1)
    bus.start()
    go = threading.Event()
    try:
        questions = [question(i) for i in range(5)]
        producer = bus.producer()
        for q in questions:
            producer.send(topics.QUESTIONS, q.question_id, q.encode())
        provider = Refusing(questions[0].question_id, go)  # the lowest offset waits: nothing committable
        crashed = llm_worker(bus, provider, restore=restore)
        while len(list(bus.read_since([topics.DEAD_LETTER], 0))) < 4:
            crashed.step(0.05)
        crashed.consumer.close()  # a crash: the dead letters are out, no offset committed
        go.set()
        crashed._pool.shutdown(wait=True)

        successor = llm_worker(bus, provider, restore=restore)
        while successor.step(0.05) or not successor.idle:
            pass
        ends = Counter(r.key for r in bus.read_since([topics.DEAD_LETTER], 0))
        assert set(ends) == {q.question_id for q in questions}
        if restore:
            assert set(ends.values()) == {1}
            assert successor.restores == 1
            assert sum(provider.calls.values()) == 5 + 1  # only the never-ended question called again
        else:  # what the restore prevents
            assert sorted(ends.values()) == [1] + [2] * 4
        successor.close()
    finally:
        go.set()
        MemoryBus.reset(name)


def test_a_copy_of_an_ended_question_is_not_called_again() -> None:
    q = question(1)
    provider = Refusing("none", threading.Event())
    answer = answer_once(AnswerStage(provider, RetryPolicy()).handle, EndedQuestions(), "llm")
    assert [o.topic for o in answer(q, ORIGIN)] == [topics.DEAD_LETTER]
    assert answer(q.model_copy(update={"delivery": 2}), ORIGIN) == []  # a second copy the retry-worker released
    assert provider.calls[q.question_id] == 1


def retries(n: int, max_deliveries: int) -> list[RetryMessage]:
    return [RetryMessage(question=question(i).model_copy(update={"delivery": max_deliveries}),
                         error_class=ErrorClass.OVERLOAD, error="503", not_before=0) for i in range(n)]


@pytest.mark.parametrize("restore", [True, False])
def test_a_retry_worker_successor_dead_letters_no_question_twice_only_with_the_restore(restore: bool) -> None:
    name = f"ended-retry-{restore}"
    bus = MemoryBus(f"memory://{name}", partitions=1)
    bus.start()
    try:
        producer = bus.producer()
        waiting = RetryMessage(question=question(99), error_class=ErrorClass.QUOTA, error="429",
                               not_before=4e9)  # the lowest offset waits: nothing committable
        capped = retries(4, 3)  # at the delivery cap: released as dead letters
        for msg in (waiting, *capped):
            producer.send(topics.RETRY_OVERLOAD, msg.question.question_id, msg.encode())

        def retry_worker() -> RetryWorker:
            ended = EndedQuestions()
            worker = RetryWorker(bus.consumer("retry", [topics.RETRY_OVERLOAD]), bus.producer(), 3,
                                 release_one=release_once(ended, "retry") if restore else release,
                                 restore=dead_letter_restore(bus, ended, "retry") if restore else None)
            worker.start()
            return worker

        crashed = retry_worker()
        while crashed.step(0):
            pass
        assert crashed.released == 4 and crashed.waiting == 1
        crashed.consumer.close()  # a crash: no offset committed past the waiting retry
        successor = retry_worker()
        while successor.step(0):
            pass
        ends = Counter(r.key for r in bus.read_since([topics.DEAD_LETTER], 0))
        assert set(ends) == {m.question.question_id for m in capped}
        if restore:
            assert set(ends.values()) == {1}
            assert successor.restores == 1 and successor.waiting == 1
        else:  # what the restore prevents
            assert set(ends.values()) == {2}
    finally:
        MemoryBus.reset(name)
