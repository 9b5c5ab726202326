"""Hostile text in the store (issue 9): the same rules on SQLite and on a real PostgreSQL.

A NUL answer killed the storage-writer on PostgreSQL ("A string literal cannot contain NUL
(0x00) characters") while SQLite stored it as it was; now both repair it the same way, and
a truncated answer is stored and counted as truncated in both.
"""

from __future__ import annotations

from typing import Any

from qaflow.core.ids import question_id
from qaflow.core.messages import MAX_ANSWER, QuestionMessage, ResultMessage, ScoreRecord, Status
from qaflow.store.base import WriteBatch
from qaflow.store.sql import SqlStore
from tests.contract.test_store_contract import REFERENCE, open_store, result, store, store_url  # noqa: F401

TITLE = "Why does bread go stale?"


def scored(answer: str, **kw: Any) -> ResultMessage:
    return result(TITLE, Status.EXHAUSTED, 0.6, answer=answer, **kw)


def test_a_nul_answer_is_stored_repaired(store: SqlStore) -> None:  # noqa: F811 - the contract's fixture
    store.write(WriteBatch(results=[scored("Stale\x00 bread.")],
                           attempts=[ScoreRecord(question_id=question_id(TITLE), generation=1, answer="a\x00b",
                                                 score=0.6, model="m", scorer={"name": "x"}, decision="exhausted")]))
    stored = store.get_result(question_id(TITLE))
    assert stored is not None and stored.answer == "Stale bread."
    assert [a.answer for a in store.get_attempts(question_id(TITLE))] == ["ab"]
    row = store._one("SELECT answer FROM results WHERE question_id = ?", (question_id(TITLE),))
    assert row[0] == "Stale bread."


def test_a_nul_in_a_question_is_stored_repaired(store: SqlStore) -> None:  # noqa: F811 - the contract's fixture
    # (A lone surrogate never reaches a message: pydantic refuses it, and the bus codec and
    # the data sets repair it first; see tests/unit/test_text_policy.py.)
    q = QuestionMessage.new("Why does bread go stale\x00?", "with\x00 NUL", REFERENCE)
    assert store.record_question(q)
    row = store._one("SELECT title, content FROM questions WHERE question_id = ?", (q.question_id,))
    assert tuple(row) == ("Why does bread go stale?", "with NUL")


def test_a_failed_result_with_a_nul_in_its_error_is_stored(store: SqlStore) -> None:  # noqa: F811 - the contract's fixture
    failed = result(TITLE, Status.FAILED, error="openai: malformed reply: 'x\x00y'")
    store.write(WriteBatch(results=[failed]))
    stored = store.get_result(question_id(TITLE))
    assert stored is not None and stored.error == "openai: malformed reply: 'xy'"


def test_a_truncated_answer_at_the_limit_is_stored_and_counted(store: SqlStore) -> None:  # noqa: F811 - the contract's fixture
    long = "bread " * (MAX_ANSWER // 6) + "b" * (MAX_ANSWER % 6)
    assert len(long) == MAX_ANSWER
    attempt = ScoreRecord(question_id=question_id(TITLE), generation=1, answer=long, score=0.97, model="m",
                          scorer={"name": "x"}, decision="exhausted", finish_reason="length", truncated=True)
    store.write(WriteBatch(results=[scored(long, truncated=True)], attempts=[attempt]))
    stored = store.get_result(question_id(TITLE))
    assert stored is not None and stored.truncated and stored.answer == long
    [back] = store.get_attempts(question_id(TITLE))
    assert back.truncated and back.finish_reason == "length"
    assert store.stats().truncated == 1
    row = store._one("SELECT truncated FROM results WHERE question_id = ?", (question_id(TITLE),))
    assert bool(row[0]) is True
    other = result("another question", Status.VALIDATED, 0.9)
    store.write(WriteBatch(results=[other]))
    assert store.stats().truncated == 1
