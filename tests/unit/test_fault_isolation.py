"""Per-record fault isolation in the consumer loops, over the in-memory bus (pure doubles)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qaflow.bus.memory import MemoryBus
from qaflow.core import topics
from qaflow.core.errors import BusError, ConfigError, ErrorClass, OverloadedError, PermanentLlmError, ScoringError
from qaflow.core.faults import Fault, FaultPolicy, classify, keepalive_s
from qaflow.core.messages import DeadLetter, Origin, QuestionMessage, RetryMessage, decode_for_topic
from qaflow.core.settings import EmbeddedSettings, ScoreWorkerSettings, load
from qaflow.pipeline.outputs import Output
from qaflow.pipeline.retry_worker import RetryWorker
from qaflow.pipeline.worker import ConcurrentWorker, Decoded, Worker

FAST = FaultPolicy(base_s=0.001, cap_s=0.002, max_unknown_tries=3)


def question(title: str) -> QuestionMessage:
    return QuestionMessage.new(title, "", "A reference answer.")


class Boom(Exception):
    """An exception nobody classified (no ``retriable``, not a data error)."""


@pytest.mark.parametrize(
    ("exc", "fault"),
    [
        (OverloadedError("503"), Fault.TRANSIENT),
        (ScoringError("bad pair"), Fault.PERMANENT),
        (PermanentLlmError("400"), Fault.PERMANENT),
        (BusError("down", retriable=True), Fault.TRANSIENT),
        (ConnectionRefusedError(), Fault.TRANSIENT),
        (ValueError("A string literal cannot contain NUL (0x00) characters."), Fault.PERMANENT),
        (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), Fault.PERMANENT),
        (KeyError("parts"), Fault.PERMANENT),
        (Boom(), Fault.UNKNOWN),
        (RuntimeError("?"), Fault.UNKNOWN),
    ],
)
def test_classified_by_attribute_then_by_kind(exc: BaseException, fault: Fault) -> None:
    assert classify(exc) is fault


@given(st.integers(min_value=10_000, max_value=10_000_000), st.integers(min_value=1, max_value=200))
def test_backoff_never_outlasts_the_poll_interval(max_poll_ms: int, failures: int) -> None:
    policy = FaultPolicy.for_poll_interval(max_poll_ms)
    wait = policy.backoff(failures)
    assert 0 < wait <= keepalive_s(max_poll_ms) <= max_poll_ms / 1000 / 5
    assert policy.backoff(failures + 1) >= wait


def test_keepalive_is_a_fifth_of_the_poll_interval_capped_at_30_s() -> None:
    assert keepalive_s(10_000) == 2.0
    assert keepalive_s(300_000) == 30.0


def test_unknown_errors_give_up_after_the_budget_permanent_at_once() -> None:
    assert FAST.gives_up(Fault.PERMANENT, 1)
    assert not FAST.gives_up(Fault.UNKNOWN, 2) and FAST.gives_up(Fault.UNKNOWN, 3)
    assert not FAST.gives_up(Fault.TRANSIENT, 1_000)


def test_impossible_poll_interval_combinations_are_refused_naming_both() -> None:
    with pytest.raises(ConfigError, match=r"QAFLOW_SCORER_TIMEOUT_S.*QAFLOW_KAFKA_MAX_POLL_INTERVAL_MS"):
        load(ScoreWorkerSettings, {}, scorer="remote", scorer_url="http://s", scorer_timeout_s=30,
             kafka_max_poll_interval_ms=20_000)
    with pytest.raises(ConfigError, match=r"QAFLOW_KAFKA_DELIVERY_TIMEOUT_MS.*QAFLOW_KAFKA_REQUEST_TIMEOUT_MS"):
        load(EmbeddedSettings, {}, kafka_delivery_timeout_ms=10_000, kafka_request_timeout_ms=15_000)
    # Possible ones pass: a short enough timeout fits; `qaflow run` on Kafka steps each stage on
    # a thread of its own, and the llm stage polls (paused) while its calls last, as the llm-worker.
    load(EmbeddedSettings, {}, llm_timeout_s=60, kafka_max_poll_interval_ms=30_000)
    load(EmbeddedSettings, {}, bus_url="kafka://h:9092", llm_timeout_s=60, kafka_max_poll_interval_ms=30_000)
    load(ScoreWorkerSettings, {}, scorer="remote", scorer_url="http://s", scorer_timeout_s=10,
         kafka_max_poll_interval_ms=20_000)


def _bus(name: str) -> MemoryBus:
    MemoryBus.reset(name)
    bus = MemoryBus(f"memory://{name}")
    bus.start()
    return bus


def _drain(bus: MemoryBus, topic: str) -> list[Any]:
    c = bus.consumer(f"check-{topic}", [topic])
    c.start()
    got = [decode_for_topic(r.topic, r.value) for r in c.poll(0.0, 10_000)]
    c.close()
    return got


def _keys(bus: MemoryBus, topic: str) -> list[str | None]:
    c = bus.consumer(f"keys-{topic}", [topic])
    c.start()
    got = [r.key for r in c.poll(0.0, 10_000)]
    c.close()
    return got


def _send(bus: MemoryBus, topic: str, msgs: list[Any]) -> None:
    p = bus.producer()
    p.start()
    for m in msgs:
        p.send(topic, m.question_id, m.encode())
    p.flush()


def test_a_batch_that_fails_is_split_and_only_the_culprit_is_dead_lettered() -> None:
    bus = _bus("split")
    qs = [question(f"q{i}?") for i in range(5)]
    _send(bus, topics.QUESTIONS, qs)
    calls: list[int] = []

    def handle(batch: list[Decoded]) -> list[Output]:
        calls.append(len(batch))
        if any(m.title == "q2?" for _, m in batch):
            raise ValueError("A string literal cannot contain NUL (0x00) characters.")
        return [Output.of(topics.ANSWERS + "-seen", m, m.question_id) for _, m in batch]

    w = Worker("storage", bus.consumer("g", [topics.QUESTIONS]), bus.producer(), handle, policy=FAST)
    w.start()
    assert w.step(0.0) == 5
    assert calls == [5, 1, 1, 1, 1, 1]  # the batch, then record by record
    dead = _drain(bus, topics.DEAD_LETTER)
    assert [d.question_id for d in dead] == [qs[2].question_id]
    assert dead[0].question == qs[2] and dead[0].stage == "storage"
    assert dead[0].origin == Origin(topic=topics.QUESTIONS, partition=0, offset=2)
    assert "NUL" in dead[0].reason and "permanent" in dead[0].reason
    assert w.dead_lettered == 1 and w.step(0.0) == 0  # committed: nothing comes again
    w.close()


def test_an_unknown_error_is_retried_then_dead_lettered_and_the_records_behind_handled() -> None:
    bus = _bus("unknown")
    qs = [question(f"u{i}?") for i in range(3)]
    _send(bus, topics.QUESTIONS, qs)
    handled: list[str] = []
    tries = {"n": 0}

    def handle(batch: list[Decoded]) -> list[Output]:
        for _, m in batch:
            if m.title == "u0?":
                tries["n"] += 1
                raise Boom("a bug")
        handled.extend(m.title for _, m in batch)
        return []

    w = Worker("score", bus.consumer("g", [topics.QUESTIONS]), bus.producer(), handle, policy=FAST)
    w.start()
    for _ in range(5):
        w.step(0.0)
    assert 3 <= tries["n"] <= 6  # its own tries (FAST.max_unknown_tries), plus the batches it was in
    assert sorted(handled) == ["u1?", "u2?"]
    dead = _drain(bus, topics.DEAD_LETTER)
    assert [d.question_id for d in dead] == [qs[0].question_id]
    assert "unknown error" in dead[0].reason and "(tries 3)" in dead[0].reason
    w.close()


def test_a_transient_error_keeps_the_record_and_retries_it_until_it_works() -> None:
    bus = _bus("transient")
    q = question("t?")
    _send(bus, topics.QUESTIONS, [q])
    outage = {"left": 4}

    def handle(batch: list[Decoded]) -> list[Output]:
        if outage["left"]:
            outage["left"] -= 1
            raise ConnectionRefusedError("store down")
        return [Output.of("done", m, m.question_id) for _, m in batch]

    w = Worker("storage", bus.consumer("g", [topics.QUESTIONS]), bus.producer(), handle, policy=FAST)
    w.start()
    for _ in range(6):
        w.step(0.0)
    assert outage["left"] == 0 and w.transient_failures == 4
    assert _drain(bus, topics.DEAD_LETTER) == []
    assert _keys(bus, "done") == [q.question_id]
    w.close()


def test_inline_dead_letters_fall_back_to_a_bare_one_when_the_full_one_cannot_be_stored() -> None:
    bus = _bus("inline")
    q = question("n?")
    _send(bus, topics.QUESTIONS, [q, question("fine?")])
    stored: list[Any] = []

    def handle(batch: list[Decoded]) -> list[Output]:
        for _, m in batch:
            if isinstance(m, QuestionMessage) and m.title == "n?":
                raise ValueError("NUL")
            if isinstance(m, DeadLetter) and m.question is not None:
                raise ValueError("NUL again")
        stored.extend(m for _, m in batch)
        return []

    w = Worker("storage", bus.consumer("g", [topics.QUESTIONS]), bus.producer(), handle,
               inline_dead_letters=True, policy=FAST)
    w.start()
    w.step(0.0)
    bare = [m for m in stored if isinstance(m, DeadLetter)]
    assert len(bare) == 1 and bare[0].question is None and bare[0].question_id == q.question_id
    assert "storing it failed" in bare[0].reason
    assert [m.title for m in stored if isinstance(m, QuestionMessage)] == ["fine?"]
    w.close()


def test_the_concurrent_worker_dead_letters_a_record_whose_handler_raises() -> None:
    bus = _bus("concurrent")
    qs = [question(f"c{i}?") for i in range(4)]
    _send(bus, topics.QUESTIONS, qs)

    def handle_one(msg: QuestionMessage, origin: Origin) -> list[Output]:
        if msg.title == "c1?":
            raise ValueError("1 validation error for AnswerMessage: String should have at most 50000 characters")
        return [Output.of("ok", msg, msg.question_id)]

    w = ConcurrentWorker("llm", bus.consumer("g", [topics.QUESTIONS]), bus.producer(), handle_one,
                         concurrency=2, policy=FAST)
    w.start()
    while w.step(0.0) or not w.idle:
        pass
    dead = _drain(bus, topics.DEAD_LETTER)
    assert [d.question_id for d in dead] == [qs[1].question_id] and dead[0].question == qs[1]
    assert dead[0].error_class is ErrorClass.PERMANENT and "50000" in dead[0].reason
    assert sorted(_keys(bus, "ok")) == sorted(q.question_id for q in (qs[0], qs[2], qs[3]))
    assert w.processed == 4 and w.step(0.0) == 0
    w.close()


def test_shutdown_abandons_a_transient_retry_without_committing_it() -> None:
    bus = _bus("abandon")
    q = question("a?")
    _send(bus, topics.QUESTIONS, [q])
    calling = threading.Event()

    def handle_one(msg: QuestionMessage, origin: Origin) -> list[Output]:
        calling.set()
        raise ConnectionRefusedError("down")

    slow = FaultPolicy(base_s=30, cap_s=30)
    w = ConcurrentWorker("llm", bus.consumer("g", [topics.QUESTIONS]), bus.producer(), handle_one,
                         concurrency=1, policy=slow)
    w.start()
    w.step(0.0)
    assert calling.wait(5)
    w.close()  # does not wait the 30 s backoff
    assert _drain(bus, topics.DEAD_LETTER) == []
    again = bus.consumer("g", [topics.QUESTIONS])
    again.start()
    assert [r.key for r in again.poll(0.0, 10)] == [q.question_id]  # not committed: delivered again
    again.close()


def test_a_publish_failure_keeps_the_outputs_and_commits_only_after_they_went_out() -> None:
    bus = _bus("outbox")
    q = question("o?")
    _send(bus, topics.QUESTIONS, [q])
    producer = bus.producer()
    real_flush = producer.flush
    broken = {"left": 2}

    def flaky_flush(timeout_s: float | None = None) -> None:
        if broken["left"]:
            broken["left"] -= 1
            raise BusError("broker away", retriable=True)
        real_flush(timeout_s)

    producer.flush = flaky_flush  # type: ignore[method-assign]
    w = Worker("score", bus.consumer("g", [topics.QUESTIONS]), producer,
               lambda batch: [Output.of("out", m, m.question_id) for _, m in batch], policy=FAST)
    w.start()
    for _ in range(2):
        with pytest.raises(BusError):
            w.step(0.0)
        assert not w.idle
    w.step(0.0)
    assert w.idle and set(_keys(bus, "out")) == {q.question_id}  # sent again after each failure: at least once
    again = bus.consumer("g", [topics.QUESTIONS])
    again.start()
    assert again.poll(0.0, 10) == []  # committed once published
    again.close()
    w.close()


def test_a_retry_whose_release_raises_is_dead_lettered_and_the_others_released() -> None:
    from qaflow.pipeline.retry import release

    bus = _bus("retry")
    bad, good = question("r-bad?"), question("r-good?")
    _send(bus, topics.RETRY_OVERLOAD, [
        RetryMessage(question=q, error_class=ErrorClass.OVERLOAD, error="503", not_before=0) for q in (bad, good)
    ])

    def release_one(msg: RetryMessage, cap: int, origin: Origin) -> Output:
        if msg.question.title == "r-bad?":
            raise ValueError("cannot encode")
        return release(msg, cap, origin)

    w = RetryWorker(bus.consumer("g", list(topics.RETRY_TOPICS)), bus.producer(), 5, release_one=release_one,
                    policy=FAST)
    w.start()
    w.step(0.0)
    assert [d.question_id for d in _drain(bus, topics.DEAD_LETTER)] == [bad.question_id]
    assert [m.question_id for m in _drain(bus, topics.QUESTIONS)] == [good.question_id]
    assert w.idle and w.step(0.0) == 0
    w.close()


def test_a_score_batch_with_one_unroutable_answer_keeps_its_neighbours_outputs() -> None:
    """A remote scorer answering 1.5 for one pair makes BestAttempt refuse it while routing,
    after the answers before it were routed: the stage must leave no state behind, or the
    record-by-record pass would drop those answers as duplicates and lose their results."""
    from qaflow.core.messages import AnswerMessage
    from qaflow.pipeline.score import GatePolicy, ScoreStage

    class OutOfRange:
        identity = {"name": "remote-stub"}

        def score(self, candidates: list[str], references: list[str]) -> list[float]:
            return [1.5 if "odd" in c else 0.95 for c in candidates]

    bus = _bus("score-split")
    answers = [AnswerMessage(question=question(f"s{i}?"), answer="odd one" if i == 1 else "fine", model="m",
                             provider="p", latency_ms=1) for i in range(3)]
    _send(bus, topics.ANSWERS, answers)
    stage = ScoreStage(OutOfRange(), GatePolicy(0.8, 2))  # type: ignore[arg-type]
    w = Worker("score", bus.consumer("g", [topics.ANSWERS]), bus.producer(),
               lambda batch: stage.handle_batch([m for _, m in batch]), policy=FAST)
    w.start()
    w.step(0.0)
    results = _drain(bus, topics.RESULTS)
    assert sorted(r.question_id for r in results) == sorted(a.question_id for a in (answers[0], answers[2]))
    assert [d.question_id for d in _drain(bus, topics.DEAD_LETTER)] == [answers[1].question_id]
    assert stage.stats.scored == 2 and stage.stats.duplicates == 0
    w.close()
