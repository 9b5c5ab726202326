"""The call ledger in SQL: one ``llm_calls`` row per LLM call, and what is read back from it.

Rows are keyed by ``(question_id, generation, delivery)`` and inserted with ``ON CONFLICT
DO NOTHING``, so a call record delivered twice (at-least-once Kafka) is counted once. The
flip side: a call repeated after a crash of the llm-worker, before its offset was committed,
reaches the provider twice but is counted once, under the key of its first record.

Mixed into :class:`~qaflow.store.sql.SqlStore`, whose ``_q``/``_all``/``_one`` it uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qaflow.core.messages import CallRecord, ResultMessage, ScoreRecord, Status
from qaflow.core.trace import build_trace
from qaflow.store.base import CallStats

COLUMNS = (
    "question_id",
    "generation",
    "delivery",
    "provider",
    "model",
    "status",
    "error",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "finish_reason",
    "retry_wait_s",
    "cost_usd",
    "run_id",
    "started_at",
    "finished_at",
)
INSERT_CALLS = (  # {values}: the VALUES list, filled by SqlStore.insert_many
    f"INSERT INTO llm_calls ({', '.join(COLUMNS)}) VALUES {{values}} "
    "ON CONFLICT (question_id, generation, delivery) DO NOTHING"
)
KIND = "CASE WHEN delivery > 1 THEN 'retry' WHEN generation > 1 THEN 'regeneration' ELSE 'first' END"


class LedgerQueries:
    """Ledger reads and writes for a SQL store (SQLite and PostgreSQL share this SQL)."""

    def _q(self, sql: str) -> str:
        raise NotImplementedError

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _one(self, sql: str, params: Sequence[Any]) -> Any:
        raise NotImplementedError

    def status(self, question_id: str) -> Status | None:
        raise NotImplementedError

    def get_result(self, question_id: str) -> ResultMessage | None:
        raise NotImplementedError

    def get_attempts(self, question_id: str) -> list[ScoreRecord]:
        raise NotImplementedError

    def insert_many(self, cur: Any, sql: str, width: int, rows: Sequence[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def insert_calls(self, cur: Any, calls: Sequence[CallRecord]) -> None:
        """Insert call records inside the caller's transaction, one statement for the batch; a key
        already stored is skipped, and so is a repeat of a key within the batch."""
        first: dict[tuple[str, int, int], CallRecord] = {}
        for c in calls:
            first.setdefault((c.question_id, c.generation, c.delivery), c)
        rows = [tuple(getattr(c, col) for col in COLUMNS) for c in first.values()]
        self.insert_many(cur, INSERT_CALLS, len(COLUMNS), rows)

    @staticmethod
    def _ledger_filter(
        run_id: str | None, ids: Sequence[str] | None, since: float | None
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if ids is not None:
            if not ids:
                return " WHERE 1 = 0", []
            clauses.append(f"question_id IN ({', '.join('?' * len(ids))})")
            params.extend(ids)
        elif run_id is not None:
            clauses.append("run_id = ?")
            params.append(run_id)
        if since is not None:
            clauses.append("finished_at >= ?")
            params.append(since)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def call_stats(
        self, run_id: str | None = None, question_ids: Sequence[str] | None = None, since: float | None = None
    ) -> CallStats:
        where, params = self._ledger_filter(run_id, question_ids, since)
        kinds = self._all(
            f"SELECT {KIND} AS kind, COUNT(*), SUM(cost_usd), COUNT(cost_usd) FROM llm_calls{where} GROUP BY {KIND}",
            params,
        )
        statuses = self._all(f"SELECT status, COUNT(*) FROM llm_calls{where} GROUP BY status", params)
        total = self._one(
            "SELECT COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(latency_ms), SUM(retry_wait_s), "
            f"SUM(cost_usd), COUNT(cost_usd), COUNT(DISTINCT question_id) FROM llm_calls{where}",
            params,
        )
        top = self._one(
            f"SELECT MAX(c) FROM (SELECT SUM(cost_usd) AS c FROM llm_calls{where} GROUP BY question_id) per_question",
            params,
        )
        calls, prompt, completion, latency, wait, cost, priced, questions = total
        return CallStats(
            calls=int(calls),
            by_kind={str(k): int(n) for k, n, _, _ in kinds},
            by_status={str(s): int(n) for s, n in statuses},
            prompt_tokens=int(prompt or 0),
            completion_tokens=int(completion or 0),
            latency_ms_total=float(latency or 0.0),
            retry_wait_s_total=float(wait or 0.0),
            cost_usd=float(cost) if priced else None,
            cost_by_kind={str(k): float(c) for k, _, c, p in kinds if p},
            questions=int(questions),
            max_question_cost_usd=None if top is None or top[0] is None else float(top[0]),
        )

    def get_calls(self, question_id: str) -> list[CallRecord]:
        rows = self._all(
            f"SELECT {', '.join(COLUMNS)} FROM llm_calls WHERE question_id = ? "
            "ORDER BY started_at, generation, delivery",
            (question_id,),
        )
        return [CallRecord.model_validate(dict(zip(COLUMNS, row, strict=True))) for row in rows]

    def generation_costs(
        self, run_id: str | None = None, question_ids: Sequence[str] | None = None
    ) -> dict[tuple[str, int], float]:
        """USD of each (question_id, generation), retries included, where a call had a price."""
        where, params = self._ledger_filter(run_id, question_ids, None)
        rows = self._all(
            f"SELECT question_id, generation, SUM(cost_usd) FROM llm_calls{where} "
            "GROUP BY question_id, generation HAVING COUNT(cost_usd) > 0",
            params,
        )
        return {(str(q), int(g)): float(c) for q, g, c in rows}

    def trace(self, question_id: str) -> dict[str, Any] | None:
        """The question's timeline (:func:`qaflow.core.trace.build_trace`), or None for an unknown id."""
        status = self.status(question_id)
        if status is None:
            return None
        row = self._one("SELECT submitted_at FROM questions WHERE question_id = ?", (question_id,))
        dead = self._all(
            "SELECT failed_at, stage, reason FROM dead_letters WHERE question_id = ? ORDER BY failed_at", (question_id,)
        )
        return build_trace(
            question_id,
            submitted_at=None if row is None else float(row[0]),
            calls=self.get_calls(question_id),
            attempts=self.get_attempts(question_id),
            result=self.get_result(question_id),
            dead_letters=[(float(f), str(s), str(r)) for f, s, r in dead],
            status=status.value,
        )
