"""The store contract (qaflow.store.base), checked on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from qaflow.core import topics
from qaflow.core.ids import question_id
from qaflow.core.messages import DeadLetter, Origin, QuestionMessage, ResultMessage, ScoreRecord, Status
from qaflow.store.base import WriteBatch
from qaflow.store.sql import SqlStore

REFERENCE = "A reference answer."


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[[], SqlStore]]:
    """Opens (and starts) stores on the test's database; all are closed at teardown."""
    from qaflow.store import open_store as open_by_url

    opened: list[SqlStore] = []
    lock = threading.Lock()

    def opener() -> SqlStore:
        s: Any = open_by_url(store_url)
        with lock:
            opened.append(s)
        s.start()
        return s  # type: ignore[no-any-return]

    yield opener
    for s in opened:
        s.close()


@pytest.fixture
def store(open_store: Callable[[], SqlStore]) -> SqlStore:
    return open_store()


def q(title: str, run_id: str | None = None) -> QuestionMessage:
    return QuestionMessage.new(title, "", REFERENCE, run_id=run_id)


def result(title: str, status: Status, score: float | None = None, **kw: Any) -> ResultMessage:
    fields: dict[str, Any] = {
        "question_id": question_id(title),
        "status": status,
        "title": title,
        "reference_answer": REFERENCE,
        "generations": 1,
        "submitted_at": 1_700_000_000.0,
        "finished_at": 1_700_000_010.0,
    }
    if status is Status.FAILED:
        fields["error"] = "permanent: HTTP 400"
    else:
        fields.update(answer=f"answer scoring {score}", score=score, best_generation=1, model="m")
    fields.update(kw)
    return ResultMessage(**fields)


def attempt(title: str, generation: int, score: float, answer: str = "", run_id: str | None = None) -> ScoreRecord:
    return ScoreRecord(
        question_id=question_id(title),
        generation=generation,
        answer=answer or f"answer {generation}",
        score=score,
        model="m",
        scorer={"name": "lexical"},
        decision="regenerate",
        run_id=run_id,
    )


def dead(offset: int | None, title: str = "poison") -> DeadLetter:
    return DeadLetter(
        reason="invalid record",
        stage="answer",
        origin=Origin(topic=topics.QUESTIONS, partition=0, offset=offset),
        question_id=question_id(title),
        failed_at=1_700_000_000.0,
    )


def migrations(store: SqlStore) -> list[int]:
    return [row[0] for row in store._all("SELECT version FROM schema_migrations ORDER BY version")]


def test_migrations_are_idempotent(store: SqlStore, open_store: Callable[[], SqlStore]) -> None:
    applied = migrations(store)
    assert applied and applied == sorted(set(applied))
    store.migrate()
    again = open_store()
    assert migrations(again) == applied
    assert again.record_question(q("still works after migrating twice"))


def test_concurrent_starts_migrate_once(open_store: Callable[[], SqlStore]) -> None:
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: open_store(), range(4)))
    assert len({tuple(migrations(s)) for s in stores}) == 1


def test_stores_started_at_the_same_moment_on_a_new_sqlite_file_all_start(tmp_path: Path) -> None:
    """Two qaflow processes on one new file: the switch to WAL mode may be refused at once
    ("database is locked", no busy handler where it could deadlock); start() waits instead.
    8 threads behind a barrier, 30 new files: failed without the retry (a standalone repro of
    the same race: 21 of 1,600 starts refused)."""
    from qaflow.store.sqlite import SqliteStore

    opened: list[SqliteStore] = []

    def start(path: Path, barrier: threading.Barrier) -> None:
        s = SqliteStore(f"sqlite:///{path}")
        opened.append(s)
        barrier.wait(timeout=10)
        s.start()

    try:
        for n in range(30):
            barrier = threading.Barrier(8)
            with ThreadPoolExecutor(8) as pool:
                for f in [pool.submit(start, tmp_path / f"q{n}.db", barrier) for _ in range(8)]:
                    f.result()
    finally:
        for s in opened:
            s.close()


def test_record_question_is_true_only_the_first_time(store: SqlStore) -> None:
    first = q("What is a monad?")
    assert store.record_question(first) is True
    assert store.record_question(first) is False
    assert store.record_question(q("What is a monad?  ")) is False  # same normalised id
    assert store.record_question(q("What is a functor?")) is True


def test_record_question_race_has_one_winner(store: SqlStore) -> None:
    question = q("Who wins the race?")
    barrier = threading.Barrier(8)

    def submit(_: int) -> bool:
        barrier.wait(timeout=10)
        return store.record_question(question)

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(submit, range(8)))
    assert outcomes.count(True) == 1
    assert store.stats().questions == 1


def test_repeated_result_is_not_counted_twice(store: SqlStore) -> None:
    r = result("Repeated", Status.VALIDATED, 0.9)
    store.write(WriteBatch(results=[r]))
    store.write(WriteBatch(results=[r, r]))
    assert store.stats().by_status == {"validated": 1}
    assert store.get_result(r.question_id) == r


def test_better_result_replaces_worse_never_the_reverse(store: SqlStore) -> None:
    worse = result("Ranked", Status.EXHAUSTED, 0.5, generations=3)
    better = result("Ranked", Status.VALIDATED, 0.9, generations=2)
    store.write(WriteBatch(results=[worse]))
    store.write(WriteBatch(results=[better]))
    assert store.get_result(worse.question_id) == better
    store.write(WriteBatch(results=[worse]))
    assert store.get_result(worse.question_id) == better
    assert store.stats().by_status == {"validated": 1}


def test_scored_beats_failed_and_failed_never_replaces_scored(store: SqlStore) -> None:
    failed = result("Failing first", Status.FAILED)
    scored = result("Failing first", Status.EXHAUSTED, -0.5)
    store.write(WriteBatch(results=[failed]))
    assert store.status(failed.question_id) is Status.FAILED
    store.write(WriteBatch(results=[scored]))
    assert store.get_result(failed.question_id) == scored

    other = result("Scored first", Status.VALIDATED, 0.85)
    store.write(WriteBatch(results=[other, result("Scored first", Status.FAILED)]))
    assert store.get_result(other.question_id) == other


def test_attempts_are_unique_per_generation(store: SqlStore) -> None:
    title = "Attempted"
    store.write(WriteBatch(attempts=[attempt(title, 1, 0.4, "first")]))
    store.write(WriteBatch(attempts=[attempt(title, 1, 0.7, "replayed"), attempt(title, 2, 0.6)]))
    got = store.get_attempts(question_id(title))
    assert [(a.generation, a.answer, a.score) for a in got] == [(1, "first", 0.4), (2, "answer 2", 0.6)]
    assert store.stats().attempts == 2


def test_dead_letters_are_idempotent_by_origin(store: SqlStore) -> None:
    store.write(WriteBatch(dead_letters=[dead(5), dead(5)]))
    store.write(WriteBatch(dead_letters=[dead(5)]))
    assert store.stats().dead_letters == 1
    store.write(WriteBatch(dead_letters=[dead(6)]))
    no_offset = dead(None)
    store.write(WriteBatch(dead_letters=[no_offset, no_offset]))
    assert store.stats().dead_letters == 3


def test_status_moves_from_queued_to_processing_to_terminal(store: SqlStore) -> None:
    title = "Lifecycle"
    qid = question_id(title)
    assert store.status(qid) is None
    store.record_question(q(title))
    assert store.status(qid) is Status.QUEUED
    store.write(WriteBatch(attempts=[attempt(title, 1, 0.3)]))
    assert store.status(qid) is Status.PROCESSING
    store.write(WriteBatch(results=[result(title, Status.EXHAUSTED, 0.3)], attempts=[attempt(title, 2, 0.2)]))
    assert store.status(qid) is Status.EXHAUSTED
    assert store.get_result(qid) is not None
    assert store.get_result(question_id("never asked")) is None


def test_stats_by_run_and_by_ids(store: SqlStore) -> None:
    for title in ("one", "two", "three"):
        store.record_question(q(title, run_id="r1"))
    store.record_question(q("four", run_id="r2"))
    store.write(
        WriteBatch(
            results=[
                result("one", Status.VALIDATED, 0.9, run_id="r1"),
                result("two", Status.EXHAUSTED, 0.5, generations=2, run_id="r1"),
                result("three", Status.FAILED, generations=0, run_id="r1"),
                result("four", Status.VALIDATED, 0.8, run_id="r2"),
            ],
            attempts=[
                attempt("one", 1, 0.9, run_id="r1"),
                attempt("two", 1, 0.3, run_id="r1"),
                attempt("two", 2, 0.5, run_id="r1"),
                attempt("four", 1, 0.8, run_id="r2"),
            ],
            dead_letters=[dead(1, "three")],
        )
    )
    r1 = store.stats(run_id="r1")
    assert r1.questions == 3
    assert r1.by_status == {"validated": 1, "exhausted": 1, "failed": 1}
    assert r1.mean_score == pytest.approx(0.7)
    assert r1.generations_distribution == {0: 1, 1: 1, 2: 1}
    assert r1.mean_score_by_generation == pytest.approx({1: 0.6, 2: 0.5})
    assert (r1.attempts, r1.dead_letters) == (3, 1)

    everything = store.stats()
    assert (everything.questions, everything.attempts, everything.dead_letters) == (4, 4, 1)
    assert everything.by_status == {"validated": 2, "exhausted": 1, "failed": 1}

    picked = store.stats(question_ids=[question_id("one"), question_id("four")])
    assert picked.by_status == {"validated": 2}
    assert picked.mean_score == pytest.approx(0.85)
    assert store.stats(question_ids=[]).questions == 0
    assert store.stats(run_id="nobody") == type(r1)()


def test_runs_are_started_once_and_finished(store: SqlStore) -> None:
    store.start_run("run-1", {"threshold": 0.8})
    store.start_run("run-1", {"threshold": 0.1})  # a restart does not overwrite the original config
    store.finish_run("run-1", {"validated": 3})
    rows = store._all("SELECT config, summary, finished_at FROM runs WHERE run_id = ?", ("run-1",))
    assert len(rows) == 1
    config, summary, finished_at = rows[0]
    assert json.loads(store._text(config)) == {"threshold": 0.8}
    assert json.loads(store._text(summary)) == {"validated": 3}
    assert finished_at is not None
