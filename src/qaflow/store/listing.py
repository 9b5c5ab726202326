"""Questions listed for people: the newest ones with their state, and why failed ones failed.

``qaflow trace`` with no id lists recent questions to pick one from; ``qaflow run``'s summary
groups its failed questions by reason. Mixed into :class:`~qaflow.store.sql.SqlStore`, whose
``_q``/``_all`` it uses (SQLite and PostgreSQL share this SQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

NO_REASON = "(no reason recorded)"


@dataclass(frozen=True, slots=True)
class QuestionRow:
    """One question as ``qaflow trace --list`` shows it. Times: Unix seconds."""

    question_id: str
    status: str  # validated / exhausted / failed, else processing (scored, not final) or queued
    score: float | None  # the best answer's score; None before one was scored, or when failed
    answers: int  # answers scored (rows of ``attempts``: one per generation)
    calls: int  # LLM calls made, retries included (the call ledger)
    submitted_at: float
    run_id: str | None


class ListingQueries:
    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def recent_questions(self, limit: int, run_id: str | None = None) -> list[QuestionRow]:
        """The ``limit`` questions submitted last (of ``run_id``, or of any run), newest first."""
        where, params = (" WHERE run_id = ?", [run_id]) if run_id is not None else ("", [])
        rows = self._all(  # only placeholders are formatted in, never values
            "SELECT q.question_id, r.status, r.score, q.submitted_at, q.run_id, "  # noqa: S608
            "(SELECT COUNT(*) FROM attempts a WHERE a.question_id = q.question_id), "
            "(SELECT COUNT(*) FROM llm_calls c WHERE c.question_id = q.question_id) "
            f"FROM (SELECT question_id, submitted_at, run_id FROM questions{where} "
            "ORDER BY submitted_at DESC, question_id LIMIT ?) q "
            "LEFT JOIN results r ON r.question_id = q.question_id "
            "ORDER BY q.submitted_at DESC, q.question_id",
            [*params, limit],
        )
        return [
            QuestionRow(
                question_id=str(qid),
                status=str(status) if status else ("processing" if answers else "queued"),
                score=None if score is None else float(score),
                answers=int(answers),
                calls=int(calls),
                submitted_at=float(submitted),
                run_id=None if run is None else str(run),
            )
            for qid, status, score, submitted, run, answers, calls in rows
        ]

    def failure_reasons(self, question_ids: Sequence[str], top: int = 3) -> list[tuple[str, int]]:
        """The ``top`` most common errors of the failed results among ``question_ids``, as
        (reason, questions), most common first; the rest summed as ``("other reasons", n)``."""
        ids = sorted(set(question_ids))
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        rows = self._all(
            f"SELECT error, COUNT(*) FROM results WHERE status = 'failed' AND question_id IN ({marks}) "  # noqa: S608
            "GROUP BY error ORDER BY COUNT(*) DESC, error",
            ids,
        )
        counted = [(str(error) if error else NO_REASON, int(n)) for error, n in rows]
        rest = sum(n for _, n in counted[top:])
        return counted[:top] + ([("other reasons", rest)] if rest else [])
