"""The store seam: questions, terminal results, attempt history, dead letters and runs.

Writes are idempotent: a repeated result never double-counts; a better result replaces a
worse one, never the reverse (scored beats failed; then the higher score wins).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from qaflow.core.messages import CallRecord, DeadLetter, QuestionMessage, ResultMessage, ScoreRecord, Status

if TYPE_CHECKING:
    from qaflow.store.listing import QuestionRow


@dataclass(frozen=True, slots=True)
class WriteBatch:
    results: Sequence[ResultMessage] = ()
    attempts: Sequence[ScoreRecord] = ()
    dead_letters: Sequence[DeadLetter] = ()
    calls: Sequence[CallRecord] = ()  # the call ledger, see qaflow.store.ledger

    def __len__(self) -> int:
        return len(self.results) + len(self.attempts) + len(self.dead_letters) + len(self.calls)


@dataclass(frozen=True, slots=True)
class StoreStats:
    questions: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    mean_score: float | None = None
    generations_distribution: dict[int, int] = field(default_factory=dict)  # answers used -> questions
    mean_score_by_generation: dict[int, float] = field(default_factory=dict)  # over all attempts
    attempts: int = 0
    dead_letters: int = 0
    truncated: int = 0  # terminal results whose stored answer was truncated


@dataclass(frozen=True, slots=True)
class CallStats:
    """What the call ledger says about a set of calls. Costs in USD; None when no call had a price."""

    calls: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)  # first / regeneration / retry -> calls
    by_status: dict[str, int] = field(default_factory=dict)  # ok / quota / overload / timeout / permanent
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms_total: float = 0.0
    retry_wait_s_total: float = 0.0
    cost_usd: float | None = None
    cost_by_kind: dict[str, float] = field(default_factory=dict)  # only kinds with a priced call
    questions: int = 0  # distinct questions with at least one call
    max_question_cost_usd: float | None = None

    @property
    def cost_per_question_usd(self) -> float | None:
        return None if self.cost_usd is None or not self.questions else self.cost_usd / self.questions


class Store(Protocol):
    url: str

    def start(self) -> None:
        """Connect and apply migrations (idempotent)."""

    def record_question(self, question: QuestionMessage) -> bool:
        """Remember a submitted question. True only for the first submission of its id."""

    def record_questions(self, questions: Sequence[QuestionMessage]) -> set[str]:
        """``record_question`` for many at once: the ids that were first submissions (a repeat counts once)."""

    def release_question(self, question_id: str) -> None:
        """Forget that a question was enqueued (its enqueue failed), so it is enqueued again."""

    def write(self, batch: WriteBatch) -> None:
        """Apply results, attempts and dead letters in one transaction."""

    def get_result(self, question_id: str) -> ResultMessage | None: ...

    def get_results(self, question_ids: Sequence[str]) -> dict[str, ResultMessage]:
        """The stored results of ``question_ids`` that have one, by id, in one query."""

    def get_attempts(self, question_id: str) -> list[ScoreRecord]: ...

    def status(self, question_id: str) -> Status | None:
        """Terminal status, else queued/processing for a known question, else None."""

    def stats(self, run_id: str | None = None, question_ids: Sequence[str] | None = None) -> StoreStats: ...

    def attempt_scores(
        self, run_id: str | None = None, question_ids: Sequence[str] | None = None
    ) -> list[tuple[str, int, float]]:
        """(question_id, generation, score) of every scored attempt."""

    def call_stats(
        self, run_id: str | None = None, question_ids: Sequence[str] | None = None, since: float | None = None
    ) -> CallStats:
        """Counts, tokens and cost of the ledger's calls (all, a run's, some questions', or since a time)."""

    def get_calls(self, question_id: str) -> list[CallRecord]:
        """The ledger's calls of one question, in the order they were made."""

    def generation_costs(
        self, run_id: str | None = None, question_ids: Sequence[str] | None = None
    ) -> dict[tuple[str, int], float]:
        """USD of each (question_id, generation) with a priced call, retries included."""

    def trace(self, question_id: str) -> dict[str, Any] | None:
        """The question's timeline (qaflow.core.trace), or None for an unknown question."""

    def recent_questions(self, limit: int, run_id: str | None = None) -> list[QuestionRow]:
        """The ``limit`` questions submitted last, newest first (qaflow.store.listing)."""

    def failure_reasons(self, question_ids: Sequence[str], top: int = 3) -> list[tuple[str, int]]:
        """The most common errors of the failed results among ``question_ids``, with counts."""

    def start_run(self, run_id: str, config: dict[str, Any]) -> None: ...

    def finish_run(self, run_id: str, summary: dict[str, Any]) -> None: ...

    def close(self) -> None: ...
