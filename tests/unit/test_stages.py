"""The stages over the in-memory bus, with small in-process doubles for the LLM and scorer."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from qaflow.bus.memory import MemoryBus
from qaflow.cache.memory import MemoryCache
from qaflow.core import topics
from qaflow.core.errors import OverloadedError, PermanentLlmError, QuotaExceededError
from qaflow.core.messages import (
    AnswerMessage,
    BestAttempt,
    DeadLetter,
    Origin,
    QuestionMessage,
    ResultMessage,
    RetryMessage,
    Status,
    decode_for_topic,
)
from qaflow.core.retry import RetryPolicy
from qaflow.llm.base import LlmReply, LlmRequest
from qaflow.pipeline.answer import AnswerStage
from qaflow.pipeline.retry import release
from qaflow.pipeline.score import GatePolicy, ScoreStage
from qaflow.pipeline.storage import StorageStage, failed_result
from qaflow.pipeline.submit import Source, Submitter
from qaflow.pipeline.worker import Worker
from qaflow.store.sqlite import SqliteStore

ORIGIN = Origin(topic=topics.QUESTIONS, partition=0, offset=7)


def question(title: str = "Why is the sky blue?", **kw: object) -> QuestionMessage:
    q = QuestionMessage.new(title, "", "Sunlight scatters off air molecules; blue scatters most.")
    return q.model_copy(update=kw)


class ScriptedLlm:
    name = "scripted"

    def __init__(self, outcomes: list[object]) -> None:
        self.outcomes = outcomes
        self.requests: list[LlmRequest] = []

    def start(self) -> None: ...
    def close(self) -> None: ...

    def generate(self, request: LlmRequest) -> LlmReply:
        self.requests.append(request)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return LlmReply(text=str(outcome), model="m1", provider="scripted", latency_ms=3.0, completion_tokens=4)


class TableScorer:
    """Scores by a lookup table of candidate text, so tests control the routing."""

    name = "table"
    identity = {"name": "table"}

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table

    def start(self) -> None: ...
    def close(self) -> None: ...

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> list[float]:
        return [self.table[c] for c in candidates]


def decoded(out: object) -> object:
    return decode_for_topic(out.topic, out.value)  # type: ignore[attr-defined]


def test_answer_stage_success_goes_to_answers() -> None:
    stage = AnswerStage(ScriptedLlm(["Because of Rayleigh scattering."]), RetryPolicy())
    [out] = stage.handle(question(), ORIGIN)
    assert out.topic == topics.ANSWERS and out.key == question().question_id
    msg = decoded(out)
    assert isinstance(msg, AnswerMessage) and msg.answer.startswith("Because") and msg.completion_tokens == 4
    assert stage.stats.first_calls == 1


@pytest.mark.parametrize(
    ("error", "topic"),
    [
        (QuotaExceededError("429", status=429, retry_after_s=7), topics.RETRY_QUOTA),
        (OverloadedError("503", status=503), topics.RETRY_OVERLOAD),
        (PermanentLlmError("400", status=400), topics.DEAD_LETTER),
    ],
)
def test_answer_stage_routes_errors_by_class(error: Exception, topic: str) -> None:
    stage = AnswerStage(ScriptedLlm([error]), RetryPolicy(max_delivery_attempts=3))
    [out] = stage.handle(question(), ORIGIN)
    assert out.topic == topic
    msg = decoded(out)
    if isinstance(msg, RetryMessage):
        assert msg.not_before > time.time() - 1
        if topic == topics.RETRY_QUOTA:
            assert msg.not_before == pytest.approx(time.time() + 7, abs=1)
    else:
        assert isinstance(msg, DeadLetter) and msg.question is not None and msg.origin == ORIGIN


def test_answer_stage_dead_letters_at_the_delivery_cap() -> None:
    stage = AnswerStage(ScriptedLlm([OverloadedError("503")]), RetryPolicy(max_delivery_attempts=3))
    [out] = stage.handle(question(delivery=3), ORIGIN)
    msg = decoded(out)
    assert isinstance(msg, DeadLetter) and "gave up after 3 deliveries" in msg.reason


def test_retry_release_increments_delivery_and_caps() -> None:
    retry = RetryMessage(question=question(delivery=1), error_class="overload", error="503", not_before=0)
    out = release(retry, 3, ORIGIN)
    again = decoded(out)
    assert out.topic == topics.QUESTIONS and isinstance(again, QuestionMessage) and again.delivery == 2
    capped = release(retry.model_copy(update={"question": question(delivery=3)}), 3, ORIGIN)
    assert capped.topic == topics.DEAD_LETTER


def answer(q: QuestionMessage, text: str) -> AnswerMessage:
    return AnswerMessage(question=q, answer=text, model="m", provider="p", latency_ms=1)


def test_score_stage_validates_regenerates_and_exhausts_with_the_best() -> None:
    stage = ScoreStage(TableScorer({"good": 0.9, "poor": 0.2, "better": 0.4}), GatePolicy(0.5, 3))
    q = question()
    out = stage.handle_batch([answer(q, "poor")])
    assert [o.topic for o in out] == [topics.SCORES, topics.QUESTIONS]
    regen = decoded(out[1])
    assert isinstance(regen, QuestionMessage) and regen.generation == 2 and regen.delivery == 1
    assert regen.best is not None and regen.best.score == 0.2
    out = stage.handle_batch([answer(regen, "better")])
    third = decoded(out[1])
    assert isinstance(third, QuestionMessage) and third.generation == 3
    out = stage.handle_batch([answer(third, "poor")])
    result = decoded(out[1])
    assert out[1].topic == topics.RESULTS and isinstance(result, ResultMessage)
    assert result.status is Status.EXHAUSTED and result.answer == "better" and result.best_generation == 2
    assert result.generations == 3
    # A re-delivered answer after the terminal state emits nothing.
    assert stage.handle_batch([answer(third, "good")]) == []
    other = question("What is 2 + 2?")
    out = stage.handle_batch([answer(other, "good"), answer(other, "good")])
    assert [o.topic for o in out] == [topics.SCORES, topics.RESULTS]
    assert stage.stats.duplicates == 2


def test_failed_result_from_a_dead_letter_keeps_the_best_attempt() -> None:
    q = question(generation=2, delivery=5, best=BestAttempt(answer="meh", score=0.3, generation=1))
    dl = DeadLetter(reason="gave up", stage="llm", origin=ORIGIN, question=q)
    r = failed_result(dl)
    assert r is not None and r.status is Status.FAILED and r.answer == "meh" and r.generations == 1
    assert failed_result(DeadLetter(reason="poison", stage="llm", origin=ORIGIN)) is None


@pytest.fixture
def store(tmp_path):  # type: ignore[no-untyped-def]
    s = SqliteStore(f"sqlite:///{tmp_path / 'q.db'}")
    s.start()
    yield s
    s.close()


def test_submitter_answers_from_cache_then_store_and_enqueues_once(store: SqliteStore) -> None:
    bus = MemoryBus("memory://submit-test")
    MemoryBus.reset("submit-test")
    bus.start()
    producer = bus.producer()
    cache = MemoryCache()
    sub = Submitter(store, cache, producer, ttl_s=60)
    q = question()
    assert sub.submit(q).source is Source.QUEUED
    assert sub.submit(q).source is Source.IN_FLIGHT
    assert sum(bus.end_offsets(topics.QUESTIONS)) == 1
    result = ResultMessage(
        question_id=q.question_id, status=Status.VALIDATED, title=q.title, answer="a", score=0.9,
        best_generation=1, generations=1, submitted_at=q.submitted_at,
    )
    StorageStage(store, MemoryCache(), 60).handle_batch([result])
    first = sub.submit(q)
    assert first.source is Source.STORE and first.result == result
    assert sub.submit(q).source is Source.CACHE  # refilled from the store


def test_worker_dead_letters_poison_and_keeps_going() -> None:
    MemoryBus.reset("poison")
    bus = MemoryBus("memory://poison")
    bus.start()
    producer = bus.producer()
    seen: list[str] = []
    worker = Worker("test", bus.consumer("g", [topics.QUESTIONS]), producer,
                    lambda batch: [seen.append(m.question_id) or None for _, m in batch] and [])
    worker.start()
    producer.send(topics.QUESTIONS, "k", b"not json")
    producer.send(topics.QUESTIONS, question().question_id, question().encode())
    assert worker.step(0.1) == 2
    assert seen == [question().question_id]
    dlq = bus.consumer("dlq", [topics.DEAD_LETTER])
    dlq.start()
    [rec] = dlq.poll(0.1)
    dl = decode_for_topic(topics.DEAD_LETTER, rec.value)
    assert isinstance(dl, DeadLetter) and "invalid record" in dl.reason
    assert dl.origin.topic == topics.QUESTIONS and dl.origin.offset is not None


def test_prefixed_bus_namespaces_topics_but_not_stages() -> None:
    from qaflow.bus.prefixed import PrefixedBus

    MemoryBus.reset("prefixed")
    raw = MemoryBus("memory://prefixed")
    bus = PrefixedBus(raw, "t1.")
    bus.start()
    bus.ensure_topics(topics.default_specs(partitions=2))
    producer = bus.producer()
    producer.send(topics.QUESTIONS, "k", b"{}")
    assert sum(raw.end_offsets("t1." + topics.QUESTIONS)) == 1
    consumer = bus.consumer("g", [topics.QUESTIONS])
    consumer.start()
    [rec] = consumer.poll(0.1)
    assert rec.topic == topics.QUESTIONS
    consumer.commit({rec.tp: rec.offset + 1})
    assert raw.broker.committed["t1.g"] == {("t1." + topics.QUESTIONS, rec.partition): rec.offset + 1}
    assert consumer.assignment() == {(topics.QUESTIONS, 0), (topics.QUESTIONS, 1)}


def test_a_failed_enqueue_is_released_so_the_next_submission_enqueues(store: SqliteStore) -> None:
    class BrokenProducer:
        def send(self, topic: str, key: str | None, value: bytes) -> None:
            raise ConnectionError("broker down")

        def flush(self, timeout_s: float | None = None) -> None: ...

    MemoryBus.reset("release")
    bus = MemoryBus("memory://release")
    bus.start()
    q = question()
    with pytest.raises(ConnectionError):
        Submitter(store, MemoryCache(), BrokenProducer(), ttl_s=60).submit(q)  # type: ignore[arg-type]
    assert Submitter(store, MemoryCache(), bus.producer(), ttl_s=60).submit(q).source is Source.QUEUED
    assert sum(bus.end_offsets(topics.QUESTIONS)) == 1


def test_a_saturated_concurrent_worker_keeps_polling_without_taking_records(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from qaflow.pipeline.worker import ConcurrentWorker

    MemoryBus.reset("keepalive")
    bus = MemoryBus("memory://keepalive")
    bus.start()
    producer = bus.producer()
    release = threading.Event()

    def slow(msg: QuestionMessage, origin: Origin) -> list:  # type: ignore[type-arg]
        release.wait(10)
        return []

    consumer = bus.consumer("g", [topics.QUESTIONS])
    w = ConcurrentWorker("llm", consumer, producer, slow, concurrency=1)
    w.start()
    for title in ("one?", "two?", "three?"):
        q = question(title)
        producer.send(topics.QUESTIONS, q.question_id, q.encode())
    polls: list[int] = []
    real_poll = consumer.poll
    monkeypatch.setattr(consumer, "poll", lambda t=1.0, n=500: polls.append(n) or real_poll(t, n))
    assert w.step(0.0) == 1  # takes one, now saturated
    w.keepalive_s = 0.0  # services derive it from QAFLOW_KAFKA_MAX_POLL_INTERVAL_MS
    before = len(polls)
    w.step(0.0)
    assert len(polls) == before + 1 and not consumer.paused  # a keep-alive poll, partitions resumed
    release.set()
    w.drain()
    taken = 0
    while w.step(0.0) or not w.idle:
        taken += 1
    assert w.processed == 3  # the keep-alive poll took nothing
    w.close()


def test_a_bad_prompt_template_fails_when_the_stage_is_built() -> None:
    from qaflow.core.errors import ConfigError

    with pytest.raises(ConfigError, match="QAFLOW_LLM_PROMPT_TEMPLATE"):
        AnswerStage(ScriptedLlm([]), RetryPolicy(), prompt_template="Answer {titel}")
