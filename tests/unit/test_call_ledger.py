"""The call ledger: the answer stage's call records, their pricing, the SQLite ledger and traces."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from qaflow.core import topics
from qaflow.core.cost import call_cost_usd
from qaflow.core.errors import ConfigError, OverloadedError, PermanentLlmError, QuotaExceededError
from qaflow.core.messages import CallRecord, ResultMessage, ScoreRecord, Status, decode_for_topic
from qaflow.core.retry import RetryPolicy
from qaflow.core.settings import EmbeddedSettings, LlmWorkerSettings, load
from qaflow.core.trace import build_trace
from qaflow.pipeline.answer import AnswerStage
from qaflow.store.base import WriteBatch
from qaflow.store.sqlite import SqliteStore
from tests.unit.test_stages import ORIGIN, ScriptedLlm, question

PRICES = {"m1": (0.15, 0.60)}


def calls_of(outputs: list) -> list[CallRecord]:
    return [decode_for_topic(topics.CALLS, o.value) for o in outputs if o.topic == topics.CALLS]  # type: ignore[misc]


# --- Cost (qaflow.core.cost) ---


def test_cost_is_tokens_per_million_times_the_price() -> None:
    assert call_cost_usd(PRICES, "m1", 1_000_000, 0) == pytest.approx(0.15)
    assert call_cost_usd(PRICES, "m1", 2_000, 500) == pytest.approx(2_000 / 1e6 * 0.15 + 500 / 1e6 * 0.60)
    assert call_cost_usd(PRICES, "m1", None, None) == 0.0
    assert call_cost_usd(PRICES, "other", 10, 10) is None
    assert call_cost_usd({"*": (1.0, 2.0)}, "other", 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert call_cost_usd({}, "m1", 10, 10) is None


def test_the_price_table_setting_is_json_and_checked() -> None:
    s = load(LlmWorkerSettings, {"QAFLOW_LLM_PRICES": '{"gpt-4o-mini": [0.15, 0.6], "*": [1, 2]}'})
    assert s.llm_prices == {"gpt-4o-mini": (0.15, 0.6), "*": (1.0, 2.0)}
    assert load(EmbeddedSettings, {}).llm_prices == {}
    for bad in ('{"m": [0.15]}', '{"m": [-1, 2]}', '{"m": "cheap"}', "{m: 1}", '{"m": [true, 1]}'):
        with pytest.raises(ConfigError, match="QAFLOW_LLM_PRICES"):
            load(EmbeddedSettings, {"QAFLOW_LLM_PRICES": bad})


# --- The answer stage emits one record per call ---


def test_an_answered_call_is_recorded_and_priced() -> None:
    stage = AnswerStage(ScriptedLlm(["an answer"]), RetryPolicy(), prices=PRICES, model="m1", ledger=True)
    q = question(generation=2, delivery=1, run_id="r1")
    outputs = stage.handle(q, ORIGIN)
    assert [o.topic for o in outputs] == [topics.ANSWERS, topics.CALLS]
    [c] = calls_of(outputs)
    assert (c.question_id, c.generation, c.delivery, c.status, c.kind) == (q.question_id, 2, 1, "ok", "regeneration")
    assert (c.provider, c.model, c.latency_ms, c.completion_tokens, c.run_id) == ("scripted", "m1", 3.0, 4, "r1")
    assert c.retry_wait_s is None
    assert c.cost_usd == pytest.approx(4 / 1e6 * 0.60)
    assert stage.stats.cost_usd == pytest.approx(c.cost_usd)


def test_a_failed_call_is_recorded_with_its_class_and_retry_wait() -> None:
    policy = RetryPolicy(quota_delay_s=7.0)
    stage = AnswerStage(ScriptedLlm([QuotaExceededError("429", retry_after_s=2.0), OverloadedError("503"),
                                     PermanentLlmError("400", status=400)]),
                        policy, model="m1", ledger=True, rng=random.Random(1))
    before = time.time()
    quota = calls_of(stage.handle(question(delivery=2), ORIGIN))[0]
    assert (quota.status, quota.kind, quota.model, quota.cost_usd) == ("quota", "retry", "m1", None)
    assert quota.retry_wait_s == pytest.approx(2.0, abs=0.05)  # Retry-After honoured
    assert quota.started_at >= before and quota.finished_at >= quota.started_at
    overload = calls_of(stage.handle(question(), ORIGIN))[0]
    assert overload.status == "overload" and overload.retry_wait_s is not None
    permanent = stage.handle(question(), ORIGIN)
    assert [o.topic for o in permanent] == [topics.DEAD_LETTER, topics.CALLS]
    assert calls_of(permanent)[0].status == "permanent" and calls_of(permanent)[0].retry_wait_s is None


def test_without_the_ledger_the_stage_emits_what_it_always_did() -> None:
    stage = AnswerStage(ScriptedLlm(["an answer"]), RetryPolicy())
    assert [o.topic for o in stage.handle(question(), ORIGIN)] == [topics.ANSWERS]


# --- The SQLite ledger ---


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(f"sqlite:///{tmp_path / 'q.db'}")
    s.start()
    return s


def record(q_id: str, generation: int, delivery: int, status: str = "ok", cost: float | None = 0.01,
           wait: float | None = None, run_id: str = "r1") -> CallRecord:
    t = 1_000.0 + generation * 10 + delivery
    return CallRecord(question_id=q_id, generation=generation, delivery=delivery, provider="p", model="m1",
                      status=status, latency_ms=5.0, prompt_tokens=10, completion_tokens=20, retry_wait_s=wait,
                      cost_usd=cost, run_id=run_id, started_at=t, finished_at=t + 0.005)


def test_a_redelivered_call_record_is_counted_once(store: SqliteStore) -> None:
    a, b = question("first").question_id, question("second").question_id
    calls = [record(a, 1, 1), record(a, 2, 1, "quota", None, 1.5), record(a, 2, 2),
             record(b, 1, 1), record(b, 1, 2, run_id="r2")]
    store.write(WriteBatch(calls=calls))
    store.write(WriteBatch(calls=calls[1:3]))  # at-least-once: the same records again
    stats = store.call_stats(run_id="r1")
    assert stats.calls == 4
    assert stats.by_kind == {"first": 2, "regeneration": 1, "retry": 1}
    assert stats.by_status == {"ok": 3, "quota": 1}
    assert (stats.prompt_tokens, stats.completion_tokens, stats.retry_wait_s_total) == (40, 80, 1.5)
    assert stats.cost_usd == pytest.approx(0.03)
    assert stats.cost_by_kind == pytest.approx({"first": 0.02, "retry": 0.01})  # the 429 had no price
    assert stats.questions == 2 and stats.cost_per_question_usd == pytest.approx(0.015)
    assert stats.max_question_cost_usd == pytest.approx(0.02)
    assert store.call_stats().calls == 5
    assert store.call_stats(question_ids=[b]).calls == 2
    assert store.call_stats(since=1_000.0 + 20).calls == 2
    assert [(c.generation, c.delivery) for c in store.get_calls(a)] == [(1, 1), (2, 1), (2, 2)]
    assert store.generation_costs(run_id="r1") == pytest.approx({(a, 1): 0.01, (a, 2): 0.01, (b, 1): 0.01})


def test_no_price_means_no_cost(store: SqliteStore) -> None:
    store.write(WriteBatch(calls=[record(question().question_id, 1, 1, cost=None)]))
    stats = store.call_stats()
    assert stats.calls == 1 and stats.cost_usd is None and stats.cost_by_kind == {}
    assert stats.cost_per_question_usd is None


# --- Traces (qaflow.core.trace) ---


def test_a_trace_follows_the_pipeline_order_not_the_clock() -> None:
    q = question()
    skewed = record(q.question_id, 2, 2)  # a pod whose clock runs behind: it "started" first
    skewed = skewed.model_copy(update={"started_at": 900.0})
    calls = [record(q.question_id, 2, 1, "quota", None, 1.5), skewed, record(q.question_id, 1, 1)]
    attempts = [ScoreRecord(question_id=q.question_id, generation=g, answer="a", score=s, model="m1",
                            scorer={"name": "x"}, decision=d, scored_at=1_000.0 + g * 10 + 5)
                for g, s, d in [(1, 0.2, "regenerate"), (2, 0.9, "validated")]]
    result = ResultMessage(question_id=q.question_id, status=Status.VALIDATED, title=q.title, answer="a", score=0.9,
                           best_generation=2, generations=2, submitted_at=1_000.0, finished_at=1_030.0)
    trace = build_trace(q.question_id, submitted_at=None, calls=calls, attempts=attempts, result=result)
    steps = [(e["step"], e.get("generation"), e.get("delivery")) for e in trace["events"]]
    assert steps == [("submitted", None, None), ("call", 1, 1), ("score", 1, None), ("call", 2, 1),
                     ("retry_wait", 2, 1), ("call", 2, 2), ("score", 2, None), ("terminal", None, None)]
    assert trace["events"][0]["at"] == 1_000.0 and trace["events"][-1]["t_s"] == 30.0
    assert trace["events"][4]["wait_s"] == 1.5 and trace["events"][3]["outcome"] == "quota"
    assert trace["status"] == "validated" and trace["cost_usd"] == pytest.approx(0.02)


def test_the_store_traces_a_question_and_knows_no_other(store: SqliteStore) -> None:
    q = question()
    store.record_question(q)
    store.write(WriteBatch(calls=[record(q.question_id, 1, 1, "overload", None, 0.3)]))
    trace = store.trace(q.question_id)
    assert trace is not None and trace["status"] == "queued"
    assert [e["step"] for e in trace["events"]] == ["submitted", "call", "retry_wait"]
    assert store.trace("0" * 32) is None
