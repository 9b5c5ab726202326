"""SQL shared by the SQLite and PostgreSQL stores; subclasses supply a dialect and connections.

Both stores apply the core text policy (:mod:`qaflow.core.text`) to every message before it
is written, so a NUL or a lone surrogate that reached a message built in process (not
decoded from the bus, where the policy already ran) is repaired the same way in SQLite and
PostgreSQL instead of being refused by one of them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from qaflow.core.messages import DeadLetter, QuestionMessage, ResultMessage, ScoreRecord, Status
from qaflow.core.text import clean_tree, json_may_need_repair
from qaflow.store.base import StoreStats, WriteBatch
from qaflow.store.ledger import LedgerQueries
from qaflow.store.listing import ListingQueries
from qaflow.store.migrations import MIGRATIONS

logger = logging.getLogger(__name__)

FAILED_RANK = -2.0  # below any score, so a scored result always replaces a failure
STALE_QUEUED_S = 900.0  # a question queued this long without a result may be enqueued again


@dataclass(frozen=True, slots=True)
class Dialect:
    param: str  # "?" or "%s"
    json: str
    float: str
    serial: str


M = TypeVar("M", bound=BaseModel)


def repaired(message: M) -> M:
    """``message`` with the text policy applied to every string it holds (itself if none changed).

    Most messages come from the bus, where decoding already applied the policy: their JSON
    (serialised in C) is checked for the escapes a repair needs first, and only a suspect one
    is walked string by string (that walk was a tenth of the storage-writer's CPU)."""
    try:
        if not json_may_need_repair(message.model_dump_json()):
            return message
    except ValueError:  # a lone surrogate cannot be serialised: repair it below
        pass
    data, changed = clean_tree(message.model_dump())
    if not changed:
        return message
    logger.warning("text policy repaired %d strings in a %s before storing it", changed, type(message).__name__)
    return type(message).model_validate(data)


def rank(result: ResultMessage) -> float:
    return FAILED_RANK if result.status is Status.FAILED or result.score is None else result.score


def dead_letter_key(dl: DeadLetter) -> str:
    o = dl.origin
    if o.offset is not None:
        return f"{o.topic}:{o.partition}:{o.offset}"
    return "sha256:" + hashlib.sha256(dl.encode()).hexdigest()


RESULT_COLS = (
    "question_id",
    "status",
    "answer",
    "score",
    "best_generation",
    "generations",
    "delivery",
    "model",
    "scorer",
    "error",
    "run_id",
    "submitted_at",
    "finished_at",
    "rank",
    "body",
    "truncated",
)
ATTEMPT_COLS = (
    "question_id", "generation", "answer", "score", "decision", "model", "provider", "scorer",
    "llm_latency_ms", "prompt_tokens", "completion_tokens", "run_id", "scored_at", "body", "truncated",
)
DEAD_LETTER_COLS = (
    "dedup_key", "question_id", "reason", "stage", "origin_topic", "origin_partition", "origin_offset",
    "failed_at", "body",
)
UPSERT_RESULTS = (
    f"INSERT INTO results ({', '.join(RESULT_COLS)}) VALUES {{values}} "
    f"ON CONFLICT (question_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in RESULT_COLS[1:])} "
    "WHERE excluded.rank > results.rank"
)
INSERT_ATTEMPTS = (
    f"INSERT INTO attempts ({', '.join(ATTEMPT_COLS)}) VALUES {{values}} "
    "ON CONFLICT (question_id, generation) DO NOTHING"
)
INSERT_DEAD_LETTERS = (
    f"INSERT INTO dead_letters ({', '.join(DEAD_LETTER_COLS)}) VALUES {{values}} ON CONFLICT (dedup_key) DO NOTHING"
)
K = TypeVar("K")
T = TypeVar("T")


def first_by(items: Iterable[T], key: Callable[[T], K]) -> list[T]:
    """The first item of each key, in order (a multi-row INSERT may not touch one row twice)."""
    out: dict[K, T] = {}
    for item in items:
        out.setdefault(key(item), item)
    return list(out.values())


def best_results(results: Iterable[ResultMessage]) -> list[ResultMessage]:
    """Per question, the result the row-by-row upsert would have kept: the first of the highest rank."""
    best: dict[str, ResultMessage] = {}
    for r in results:
        kept = best.get(r.question_id)
        if kept is None or rank(r) > rank(kept):
            best[r.question_id] = r
    return list(best.values())


def result_row(r: ResultMessage) -> tuple[Any, ...]:
    return (
        r.question_id,
        r.status.value,
        r.answer,
        r.score,
        r.best_generation,
        r.generations,
        r.delivery,
        r.model,
        json.dumps(r.scorer) if r.scorer else None,
        r.error,
        r.run_id,
        r.submitted_at,
        r.finished_at,
        rank(r),
        r.model_dump_json(),
        r.truncated,
    )


def attempt_row(a: ScoreRecord) -> tuple[Any, ...]:
    return (
        a.question_id,
        a.generation,
        a.answer,
        a.score,
        a.decision,
        a.model,
        a.provider,
        json.dumps(a.scorer),
        a.llm_latency_ms,
        a.prompt_tokens,
        a.completion_tokens,
        a.run_id,
        a.scored_at,
        a.model_dump_json(),
        a.truncated,
    )


def dead_letter_row(d: DeadLetter) -> tuple[Any, ...]:
    qid = d.question_id or (d.question.question_id if d.question else None)
    return (
        dead_letter_key(d),
        qid,
        d.reason,
        d.stage,
        d.origin.topic,
        d.origin.partition,
        d.origin.offset,
        d.failed_at,
        d.model_dump_json(),
    )


class SqlStore(LedgerQueries, ListingQueries):
    dialect: Dialect
    url: str

    # Subclasses: a context manager yielding a connection inside one transaction.
    def transaction(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _q(self, sql: str) -> str:
        return sql.replace("?", self.dialect.param) if self.dialect.param != "?" else sql

    def lock_migrations(self, cur: Any) -> None:
        """Serialise migrations between processes for the rest of the transaction (dialect hook).
        SQLite needs nothing: its ``BEGIN IMMEDIATE`` already holds the database's write lock."""

    def migrate(self) -> None:
        """Apply the missing migrations in one transaction, under the dialect's migration lock."""
        with self.transaction() as conn:
            cur = conn.cursor()
            self.lock_migrations(cur)
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                f"(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at {self.dialect.float} NOT NULL)"
            )
            cur.execute("SELECT version FROM schema_migrations")
            applied = {row[0] for row in cur.fetchall()}
            for version, description, statements in MIGRATIONS:
                if version in applied:
                    continue
                for stmt in statements:
                    cur.execute(
                        stmt.format(json=self.dialect.json, float=self.dialect.float, serial=self.dialect.serial)
                    )
                cur.execute(
                    self._q("INSERT INTO schema_migrations VALUES (?, ?, ?) ON CONFLICT (version) DO NOTHING"),
                    (version, description, time.time()),
                )
                logger.info("applying migration %d: %s", version, description)

    def record_question(self, question: QuestionMessage) -> bool:
        now = time.time()
        sql = """INSERT INTO questions (question_id, title, content, reference_answer, category, run_id,
                                       submitted_at, enqueued_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (question_id) DO UPDATE SET enqueued_at = excluded.enqueued_at
                 WHERE questions.enqueued_at < ?
                   AND NOT EXISTS (SELECT 1 FROM results r WHERE r.question_id = questions.question_id)"""
        q = repaired(question)
        with self.transaction() as conn:
            cur = conn.cursor()
            cur.execute(
                self._q(sql),
                (
                    q.question_id,
                    q.title,
                    q.content,
                    q.reference_answer,
                    q.category,
                    q.run_id,
                    q.submitted_at,
                    now,
                    now - STALE_QUEUED_S,
                ),
            )
            return bool(cur.rowcount == 1)

    def record_questions(self, questions: Sequence[QuestionMessage]) -> set[str]:
        """:meth:`record_question` for many questions in one statement per 500: the ids recorded
        now (first submissions, and stale ones enqueued again). A repeated id counts once."""
        qs = first_by((repaired(q) for q in questions), lambda q: q.question_id)
        recorded: set[str] = set()
        now = time.time()
        for start in range(0, len(qs), 500):
            part = qs[start : start + 500]
            rows = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(part))
            sql = f"""INSERT INTO questions (question_id, title, content, reference_answer, category, run_id,
                                            submitted_at, enqueued_at)
                      VALUES {rows}
                      ON CONFLICT (question_id) DO UPDATE SET enqueued_at = excluded.enqueued_at
                      WHERE questions.enqueued_at < ?
                        AND NOT EXISTS (SELECT 1 FROM results r WHERE r.question_id = questions.question_id)
                      RETURNING question_id"""
            params = [v for q in part for v in (q.question_id, q.title, q.content, q.reference_answer, q.category,
                                                q.run_id, q.submitted_at, now)]
            with self.transaction() as conn:
                cur = conn.cursor()
                cur.execute(self._q(sql), (*params, now - STALE_QUEUED_S))
                recorded.update(str(row[0]) for row in cur.fetchall())
        return recorded

    def release_question(self, question_id: str) -> None:
        """Undo ``record_question`` after a failed enqueue, so the next submission enqueues it."""
        with self.transaction() as conn:
            conn.cursor().execute(
                self._q(
                    "UPDATE questions SET enqueued_at = 0 WHERE question_id = ? "
                    "AND NOT EXISTS (SELECT 1 FROM results r WHERE r.question_id = questions.question_id)"
                ),
                (question_id,),
            )

    def write(self, batch: WriteBatch) -> None:
        """One transaction, one multi-row statement per table (issue 13: a statement per row made
        the storage-writer wait on PostgreSQL). Rows of one key are folded first, as applying them
        one at a time would: the best result per question (the first of equal rank), the first
        attempt per (question, generation), the first dead letter per dedup key."""
        if not len(batch):
            return
        results = best_results(repaired(r) for r in batch.results)
        attempts = first_by((repaired(a) for a in batch.attempts), lambda a: (a.question_id, a.generation))
        dead = first_by((repaired(d) for d in batch.dead_letters), dead_letter_key)
        with self.transaction() as conn:
            cur = conn.cursor()
            self.insert_many(cur, UPSERT_RESULTS, len(RESULT_COLS), [result_row(r) for r in results])
            self.insert_many(cur, INSERT_ATTEMPTS, len(ATTEMPT_COLS), [attempt_row(a) for a in attempts])
            self.insert_many(cur, INSERT_DEAD_LETTERS, len(DEAD_LETTER_COLS), [dead_letter_row(d) for d in dead])
            self.insert_calls(cur, [repaired(c) for c in batch.calls])

    def insert_many(self, cur: Any, sql: str, width: int, rows: Sequence[tuple[Any, ...]]) -> None:
        """Run ``sql`` (with ``{values}`` where the VALUES list goes) for every row (dialect hook:
        SQLite runs in process, so ``executemany`` is enough; PostgreSQL sends one statement)."""
        if rows:
            cur.executemany(self._q(sql.format(values="(" + ", ".join("?" * width) + ")")), rows)

    def _one(self, sql: str, params: Sequence[Any]) -> Any:
        with self.transaction() as conn:
            cur = conn.cursor()
            cur.execute(self._q(sql), tuple(params))
            return cur.fetchone()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.transaction() as conn:
            cur = conn.cursor()
            cur.execute(self._q(sql), tuple(params))
            return list(cur.fetchall())

    @staticmethod
    def _text(body: Any) -> str:
        return body if isinstance(body, str) else json.dumps(body)

    def get_result(self, question_id: str) -> ResultMessage | None:
        row = self._one("SELECT body FROM results WHERE question_id = ?", (question_id,))
        return ResultMessage.model_validate_json(self._text(row[0])) if row else None

    def get_results(self, question_ids: Sequence[str]) -> dict[str, ResultMessage]:
        """The stored results of ``question_ids`` (those that have one), in one query."""
        ids = sorted(set(question_ids))
        if not ids:
            return {}
        rows = self._all(f"SELECT body FROM results WHERE question_id IN ({', '.join('?' * len(ids))})", ids)
        found = (ResultMessage.model_validate_json(self._text(r[0])) for r in rows)
        return {r.question_id: r for r in found}

    def get_attempts(self, question_id: str) -> list[ScoreRecord]:
        rows = self._all("SELECT body FROM attempts WHERE question_id = ? ORDER BY generation", (question_id,))
        return [ScoreRecord.model_validate_json(self._text(r[0])) for r in rows]

    def status(self, question_id: str) -> Status | None:
        row = self._one(
            """SELECT (SELECT status FROM results WHERE question_id = ?),
                      (SELECT COUNT(*) FROM attempts WHERE question_id = ?),
                      (SELECT COUNT(*) FROM questions WHERE question_id = ?)""",
            (question_id, question_id, question_id),
        )
        if row[0]:
            return Status(row[0])
        if row[1]:
            return Status.PROCESSING
        return Status.QUEUED if row[2] else None

    def _filter(self, column: str, run_id: str | None, ids: Sequence[str] | None) -> tuple[str, list[Any]]:
        if ids is not None:
            if not ids:
                return " WHERE 1 = 0", []
            return f" WHERE {column} IN ({', '.join('?' * len(ids))})", list(ids)
        if run_id is not None:
            return " WHERE run_id = ?", [run_id]
        return "", []

    def stats(self, run_id: str | None = None, question_ids: Sequence[str] | None = None) -> StoreStats:
        where, params = self._filter("question_id", run_id, question_ids)
        by_status = {s: n for s, n in self._all(f"SELECT status, COUNT(*) FROM results{where} GROUP BY status", params)}
        mean = self._one(
            f"SELECT AVG(score) FROM results{where}{' AND' if where else ' WHERE'} score IS NOT NULL", params
        )[0]
        dist = {
            int(g): n
            for g, n in self._all(f"SELECT generations, COUNT(*) FROM results{where} GROUP BY generations", params)
        }
        by_gen = {
            int(g): float(m)
            for g, m in self._all(
                f"SELECT generation, AVG(score) FROM attempts{where} GROUP BY generation ORDER BY generation", params
            )
        }
        attempts = self._one(f"SELECT COUNT(*) FROM attempts{where}", params)[0]
        truncated = self._one(
            f"SELECT COUNT(*) FROM results{where}{' AND' if where else ' WHERE'} truncated", params
        )[0]
        questions = self._one(f"SELECT COUNT(*) FROM questions{where}", params)[0]
        if run_id is not None and question_ids is None:  # dead_letters has no run_id column
            where = " WHERE question_id IN (SELECT question_id FROM questions WHERE run_id = ?)"
        dead = self._one(f"SELECT COUNT(*) FROM dead_letters{where}", params)[0]
        return StoreStats(
            questions=int(questions),
            by_status=by_status,
            mean_score=None if mean is None else float(mean),
            generations_distribution=dist,
            mean_score_by_generation=by_gen,
            attempts=int(attempts),
            dead_letters=int(dead),
            truncated=int(truncated),
        )

    def attempt_scores(
        self, run_id: str | None = None, question_ids: Sequence[str] | None = None
    ) -> list[tuple[str, int, float]]:
        """(question_id, generation, score) of every attempt, for reports."""
        where, params = self._filter("question_id", run_id, question_ids)
        rows = self._all(f"SELECT question_id, generation, score FROM attempts{where}", params)
        return [(str(q), int(g), float(s)) for q, g, s in rows]

    def start_run(self, run_id: str, config: dict[str, Any]) -> None:
        with self.transaction() as conn:
            conn.cursor().execute(
                self._q(
                    "INSERT INTO runs (run_id, started_at, config) VALUES (?, ?, ?) ON CONFLICT (run_id) DO NOTHING"
                ),
                (run_id, time.time(), json.dumps(config)),
            )

    def finish_run(self, run_id: str, summary: dict[str, Any]) -> None:
        with self.transaction() as conn:
            conn.cursor().execute(
                self._q("UPDATE runs SET finished_at = ?, summary = ? WHERE run_id = ?"),
                (time.time(), json.dumps(summary), run_id),
            )
