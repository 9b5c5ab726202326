"""Batched store writes (issue 13, item 2): one statement per table per batch, with the
outcome of applying the rows one at a time, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qaflow.core.ids import question_id
from qaflow.core.messages import Status
from qaflow.store.base import WriteBatch
from qaflow.store.sql import SqlStore
from tests.contract.test_store_contract import attempt, dead, result


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    from qaflow.store import open_store

    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
    s: Any = open_store(url)
    s.start()
    yield s
    s.close()


def test_a_batch_with_repeats_keeps_what_row_by_row_upserts_keep(store: SqlStore) -> None:
    """Repeats of one key in one batch: the best result (the first of equal rank), the first
    attempt per generation, the first dead letter per origin; a multi-row upsert that touched a
    row twice would fail on PostgreSQL."""
    store.write(WriteBatch(results=[result("kept", Status.VALIDATED, 0.7)]))
    first_of_equal = result("tie", Status.EXHAUSTED, 0.5, model="first")
    batch = WriteBatch(
        results=[
            result("kept", Status.EXHAUSTED, 0.6),  # worse than the stored row: ignored
            result("best", Status.EXHAUSTED, 0.4),
            result("best", Status.VALIDATED, 0.9),
            result("best", Status.FAILED),
            first_of_equal,
            result("tie", Status.EXHAUSTED, 0.5, model="second"),
        ],
        attempts=[attempt("best", 1, 0.4, answer="first"), attempt("best", 1, 0.9, answer="second"),
                  attempt("best", 2, 0.9)],
        dead_letters=[dead(7), dead(7, title="other"), dead(8)],
    )
    store.write(batch)
    kept, best, tie = (store.get_result(question_id(t)) for t in ("kept", "best", "tie"))
    assert kept is not None and kept.score == 0.7
    assert best is not None and (best.status, best.score) == (Status.VALIDATED, 0.9)
    assert tie is not None and tie.model == "first"
    attempts = store.get_attempts(question_id("best"))
    assert [(a.generation, a.answer) for a in attempts] == [(1, "first"), (2, "answer 2")]
    rows = store._all("SELECT origin_offset, question_id FROM dead_letters ORDER BY origin_offset")
    assert [(int(o), qid) for o, qid in rows] == [(7, question_id("poison")), (8, question_id("poison"))]


def test_get_results_reads_many_in_one_query(store: SqlStore) -> None:
    store.write(WriteBatch(results=[result(f"q{i}", Status.VALIDATED, 0.8 + i / 100) for i in range(5)]))
    found = store.get_results([question_id("q1"), question_id("q3"), question_id("missing"), question_id("q1")])
    assert sorted(found) == sorted([question_id("q1"), question_id("q3")])
    assert found[question_id("q3")].score == pytest.approx(0.83)
    assert store.get_results([]) == {}


class CountingCursor:
    def __init__(self, cur: Any, calls: list[str]) -> None:
        self._cur = cur
        self._calls = calls

    def execute(self, sql: Any, *args: Any) -> Any:
        self._calls.append(str(sql)[:30])
        return self._cur.execute(sql, *args)

    def executemany(self, sql: Any, rows: Any) -> Any:
        rows = list(rows)
        self._calls.extend(str(sql)[:30] for _ in rows)  # one statement per row on the wire
        return self._cur.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


@pytest.mark.integration
def test_postgres_writes_a_batch_in_one_statement_per_table(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """300 rows in three statements, not 300 (the storage-writer waited on PostgreSQL round trips)."""
    from qaflow.store.postgres import PostgresStore

    store = PostgresStore(pg_url)
    store.start()
    calls: list[str] = []
    real = store.transaction

    def counted() -> Any:
        from contextlib import contextmanager

        @contextmanager
        def wrap() -> Iterator[Any]:
            with real() as conn:
                class Conn:
                    def cursor(self, *a: Any, **kw: Any) -> Any:
                        return CountingCursor(conn.cursor(*a, **kw), calls)

                    def __getattr__(self, name: str) -> Any:
                        return getattr(conn, name)

                yield Conn()

        return wrap()

    monkeypatch.setattr(store, "transaction", counted)
    try:
        store.write(WriteBatch(
            results=[result(f"r{i}", Status.VALIDATED, 0.9) for i in range(100)],
            attempts=[attempt(f"r{i}", 1, 0.9) for i in range(100)],
            dead_letters=[dead(i) for i in range(100)],
        ))
        assert len(calls) == 3, calls[:5]
        assert store.stats().by_status == {"validated": 100}
        assert store.stats().attempts == 100 and store.stats().dead_letters == 100
    finally:
        store.close()


def test_record_questions_is_record_question_for_many(store: SqlStore) -> None:
    from tests.contract.test_store_contract import q

    store.record_question(q("known"))
    store.write(WriteBatch(results=[result("answered", Status.VALIDATED, 0.9)]))
    chunk = [q("known"), q("new 1"), q("answered"), q("new 2"), q("new 1")]
    # "answered" has a result but was never recorded: record_question would say True too.
    assert store.record_questions(chunk) == {question_id("new 1"), question_id("new 2"), question_id("answered")}
    assert store.record_questions(chunk) == set()
    assert [store.record_question(m) for m in chunk] == [False] * 5
    assert store.record_questions([]) == set()
    assert store.stats().questions == 4
