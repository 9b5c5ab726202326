"""Read-only queries the Store protocol has no method for, in the SQL SQLite and PostgreSQL share.

Only the floor of a number differs: PostgreSQL's CAST rounds, SQLite's truncates. The SQL is
built from constants only (S608 is silenced for that); values are always bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qaflow.store.sql import SqlStore

LATENCY_SAMPLE = 5_000  # most recent results used for the latency percentiles


@dataclass
class Rows:
    per_minute: dict[int, int] = field(default_factory=dict)  # minute (epoch s // 60) -> results
    recent_results: int = 0  # finished in the last five minutes
    latencies_s: list[float] = field(default_factory=list)  # submitted -> finished, within the window
    score_bins: dict[int, int] = field(default_factory=dict)  # floor(score * bins) -> results
    attempts: int = 0
    questions_with_attempts: int = 0


class Queries:
    def __init__(self, store: SqlStore) -> None:
        self.store = store
        postgres = store.dialect.param == "%s"
        self._param = store.dialect.param
        self._floor = "FLOOR({})" if postgres else "CAST({} AS INTEGER)"

    def rows(self, now_s: float, window_minutes: int, bins: int) -> Rows:
        since = (int(now_s // 60) - window_minutes + 1) * 60.0
        minute = self._floor.format("finished_at / 60")
        bucket = self._floor.format(f"score * {int(bins)}")
        out = Rows()
        with self.store.transaction() as conn:
            cur = conn.cursor()

            def q(sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
                cur.execute(sql.replace("?", self._param), params)
                return list(cur.fetchall())

            out.per_minute = {int(m): int(n) for m, n in q(
                f"SELECT {minute}, COUNT(*) FROM results WHERE finished_at >= ? GROUP BY 1", (since,))}  # noqa: S608
            out.recent_results = int(q("SELECT COUNT(*) FROM results WHERE finished_at >= ?", (now_s - 300.0,))[0][0])
            out.latencies_s = [float(r[0]) for r in q(
                "SELECT finished_at - submitted_at FROM results WHERE finished_at >= ? "
                "ORDER BY finished_at DESC LIMIT ?", (since, LATENCY_SAMPLE))]
            out.score_bins = {int(b): int(n) for b, n in q(
                f"SELECT {bucket}, COUNT(*) FROM results WHERE score IS NOT NULL GROUP BY 1")}  # noqa: S608
            attempts, questions = q("SELECT COUNT(*), COUNT(DISTINCT question_id) FROM attempts")[0]
            out.attempts, out.questions_with_attempts = int(attempts), int(questions)
        return out

    def ping(self) -> None:
        with self.store.transaction() as conn:
            conn.cursor().execute("SELECT 1")
