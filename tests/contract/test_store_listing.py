"""What ``qaflow trace --list`` and ``qaflow run``'s failure reasons read (qaflow.store.listing),
on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import pytest

from qaflow.core.ids import question_id
from qaflow.core.messages import CallRecord, QuestionMessage, Status
from qaflow.store.base import WriteBatch
from qaflow.store.sql import SqlStore
from tests.contract import test_store_batch_write
from tests.contract.test_store_contract import REFERENCE, attempt, result

store = test_store_batch_write.store  # the fixture: a store on SQLite, and on a real PostgreSQL


def submitted(title: str, at: float, run_id: str = "r1") -> QuestionMessage:
    return QuestionMessage(question_id=question_id(title), title=title, reference_answer=REFERENCE, run_id=run_id,
                           submitted_at=at)


def call(title: str, generation: int, delivery: int) -> CallRecord:
    return CallRecord(question_id=question_id(title), generation=generation, delivery=delivery, provider="p",
                      model="m", status="ok" if delivery == 1 else "overload", latency_ms=1.0, started_at=1.0)


def test_recent_questions_newest_first_with_state_answers_and_calls(store: SqlStore) -> None:
    for i, title in enumerate(["oldest", "validated", "failed", "processing", "queued"]):
        store.record_question(submitted(title, 1_700_000_000.0 + i, run_id="other" if title == "oldest" else "r1"))
    store.write(WriteBatch(
        results=[result("validated", Status.VALIDATED, 0.91), result("failed", Status.FAILED)],
        attempts=[attempt("validated", 1, 0.5), attempt("validated", 2, 0.91), attempt("processing", 1, 0.3)],
        calls=[call("validated", 1, 1), call("validated", 2, 1), call("failed", 1, 1), call("failed", 1, 2),
               call("failed", 1, 3)],
    ))

    rows = store.recent_questions(4)
    assert [r.question_id for r in rows] == [question_id(t) for t in ("queued", "processing", "failed", "validated")]
    got = {r.question_id: (r.status, r.score, r.answers, r.calls) for r in rows}
    assert got[question_id("queued")] == ("queued", None, 0, 0)
    assert got[question_id("processing")] == ("processing", None, 1, 0)
    assert got[question_id("failed")] == ("failed", None, 0, 3)
    assert got[question_id("validated")] == ("validated", pytest.approx(0.91), 2, 2)
    assert rows[0].submitted_at == pytest.approx(1_700_000_004.0) and rows[0].run_id == "r1"

    assert [r.question_id for r in store.recent_questions(10, run_id="other")] == [question_id("oldest")]
    assert len(store.recent_questions(10)) == 5
    assert store.recent_questions(10, run_id="none such") == []


def test_failure_reasons_count_failed_questions_by_error_most_common_first(store: SqlStore) -> None:
    errors = ["connection refused"] * 4 + ["HTTP 400"] * 2 + ["a", "b", "c"]
    store.write(WriteBatch(results=[
        *(result(f"f{i}", Status.FAILED, error=e) for i, e in enumerate(errors)),
        result("ok", Status.VALIDATED, 0.9),
    ]))
    ids = [question_id(f"f{i}") for i in range(len(errors))] + [question_id("ok"), question_id("unknown")]
    assert store.failure_reasons(ids, top=3) == [("connection refused", 4), ("HTTP 400", 2), ("a", 1),
                                                 ("other reasons", 2)]
    assert store.failure_reasons(ids, top=5) == [("connection refused", 4), ("HTTP 400", 2), ("a", 1), ("b", 1),
                                                 ("c", 1)]
    assert store.failure_reasons([question_id("f0"), question_id("ok")]) == [("connection refused", 1)]
    assert store.failure_reasons([question_id("ok")]) == []
    assert store.failure_reasons([]) == []


def _plan(store: SqlStore, sql: str, params: list[object]) -> str:
    """The plan of ``sql`` as text; on PostgreSQL with sequential scans off, so the planner takes an
    index whenever one serves (a table of a few rows would be scanned otherwise)."""
    with store.transaction() as conn:
        cur = conn.cursor()
        if store.dialect.param == "?":
            cur.execute("EXPLAIN QUERY PLAN " + sql, params)
        else:
            cur.execute("SET LOCAL enable_seqscan = off")
            cur.execute("EXPLAIN " + store._q(sql), params)
        return " ".join(str(r[-1]) for r in cur.fetchall())


def test_the_newest_questions_are_found_by_index_not_by_sorting_the_table(store: SqlStore) -> None:
    for i in range(50):
        store.record_question(submitted(f"q{i}", 1_700_000_000.0 + i, run_id=f"r{i % 3}"))
    newest = "SELECT question_id FROM questions ORDER BY submitted_at DESC LIMIT ?"
    of_run = "SELECT question_id FROM questions WHERE run_id = ? ORDER BY submitted_at DESC LIMIT ?"
    assert "questions_submitted_at" in _plan(store, newest, [5])
    assert "questions_run_submitted_at" in _plan(store, of_run, ["r1", 5])
