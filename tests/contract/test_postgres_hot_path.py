"""PostgresStore's hot path on a real PostgreSQL (issue 13, item 1): the connection pool keeps
its connections and replaces one the server ended while it was idle; ``question_view`` reads
in one statement what ``status``, ``get_result`` and ``get_attempts`` read in three."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from qaflow.core.ids import question_id
from qaflow.core.messages import QuestionMessage, Status
from qaflow.store.base import WriteBatch
from qaflow.store.postgres import PostgresStore, sized_url, split_url
from tests.contract.test_store_contract import REFERENCE, attempt, result
from tests.pg import pg_rows

pytestmark = pytest.mark.integration

SESSIONS = ("SELECT pid, backend_start FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'qaflow' AND pid <> pg_backend_pid()")
UNKNOWN = "0" * 32


def _sessions(url: str) -> set[tuple[Any, ...]]:
    return set(pg_rows(url, SESSIONS))


def _hammer(store: PostgresStore, threads: int, calls: int) -> None:
    with ThreadPoolExecutor(threads) as pool:
        assert all(s is None for s in pool.map(lambda _: store.status(UNKNOWN), range(calls)))


def test_connections_opened_under_concurrency_are_kept(pg_url: str) -> None:
    store = PostgresStore(pg_url + "?pool_min=1&pool_max=4")
    store.start()
    try:
        _hammer(store, 8, 400)
        kept = _sessions(pg_url)
        assert 1 <= len(kept) <= 4
        _hammer(store, 8, 400)
        # psycopg2's own pool closed every returned connection beyond pool_min=1: new sessions each round
        assert _sessions(pg_url) == kept
    finally:
        store.close()
    deadline = time.monotonic() + 5  # a closed connection's backend exits shortly after, not at once
    while _sessions(pg_url) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _sessions(pg_url) == set()


def test_an_idle_connection_the_server_ended_is_replaced_before_use(pg_url: str) -> None:
    store = PostgresStore(sized_url(pg_url, 3))  # three connections opened at start, all kept
    store.start()
    try:
        before = _sessions(pg_url)
        assert len(before) == 3
        ended = pg_rows(pg_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                                "current_database() AND application_name = 'qaflow' AND pid <> pg_backend_pid()")
        assert len(ended) == 3
        deadline = time.monotonic() + 10  # pg_terminate_backend only signals the backends
        while _sessions(pg_url) and time.monotonic() < deadline:
            time.sleep(0.02)
        for _ in range(5):  # each call would draw a dead connection without the check
            assert store.status(UNKNOWN) is None
        assert not _sessions(pg_url) & before
    finally:
        store.close()


def test_sized_url_sets_the_pool_unless_the_url_does() -> None:
    url = "postgresql://u:p@db:5432/qa?sslmode=require"
    dsn, low, high = split_url(sized_url(url, 12))
    assert (low, high) == (12, 12)
    assert "pool_" not in dsn and "sslmode=require" in dsn
    assert split_url(sized_url(url + "&pool_max=3", 12))[1:] == (1, 3)
    assert sized_url("sqlite:///qa.db", 12) == "sqlite:///qa.db"


def test_question_view_is_status_result_and_attempts_in_one_statement(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    store.start()
    try:
        assert store.question_view(UNKNOWN) == (None, None, [])
        titles = {s: f"a {s} question" for s in ("queued", "processing", "validated", "failed")}
        for title in titles.values():
            store.record_question(QuestionMessage.new(title, "", REFERENCE))
        ids = {s: question_id(t) for s, t in titles.items()}

        store.write(WriteBatch(
            results=[result(titles["validated"], Status.VALIDATED, 0.9, generations=2),
                     result(titles["failed"], Status.FAILED)],
            attempts=[attempt(titles["processing"], 1, 0.3), attempt(titles["validated"], 2, 0.9),
                      attempt(titles["validated"], 1, 0.4)],
        ))
        for state, qid in ids.items():
            view = store.question_view(qid)
            expected_status = store.status(qid)
            assert view[0] is expected_status and expected_status is not None and expected_status.value == state
            assert view[1] == store.get_result(qid)
            assert view[2] == store.get_attempts(qid)
        assert [a.generation for a in store.question_view(ids["validated"])[2]] == [1, 2]
    finally:
        store.close()


def test_admit_is_lookup_record_and_state_in_one_statement(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    store.start()
    try:
        new = QuestionMessage.new("a new question", "", REFERENCE)
        assert store.admit(new) == (None, True, Status.QUEUED)
        assert store.status(new.question_id) is Status.QUEUED
        assert store.admit(new) == (None, False, Status.QUEUED)  # in flight: not recorded again
        store.write(WriteBatch(attempts=[attempt("a new question", 1, 0.3)]))
        assert store.admit(new) == (None, False, Status.PROCESSING)

        answered = result("an answered question", Status.VALIDATED, 0.9)
        store.write(WriteBatch(results=[answered]))  # a result whose question was never recorded
        assert store.admit(QuestionMessage.new("an answered question", "", REFERENCE)) == (
            answered, False, Status.VALIDATED)
        assert pg_rows(pg_url, "SELECT count(*) FROM questions WHERE question_id = %s",
                       (answered.question_id,)) == [(0,)]  # as get_result then record_question: no row

        store.release_question(new.question_id)  # a failed enqueue: the next POST records it again
        assert store.admit(new)[1] is True
    finally:
        store.close()


def test_admit_is_one_round_trip_without_begin_and_commit(pg_url: str) -> None:
    """A single statement needs no transaction around it: inside one, psycopg2 sends ``BEGIN``
    and ``COMMIT`` as round trips of their own (issue 13: three round trips per new POST).
    The session's last statement tells: the admit itself, not a ``COMMIT``."""
    store = PostgresStore(sized_url(pg_url, 1))
    store.start()
    try:
        assert store.admit(QuestionMessage.new("one round trip", "", REFERENCE)) == (None, True, Status.QUEUED)
        (last,) = [q for _, q in pg_rows(pg_url, SESSIONS.replace("pid, backend_start", "pid, query"))]
        assert last.lstrip().startswith("WITH stored"), last
        with store.transaction() as conn:  # the connection went back to the pool in transaction mode
            assert conn.autocommit is False
    finally:
        store.close()
