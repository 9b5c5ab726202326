"""What a run bought and what it cost, as one flat, JSON-ready summary.

Call counts, tokens and cost come from the call ledger (:mod:`qaflow.store.ledger`), so
retries are counted exactly. ``cost`` is always present: USD, or None when no call had a
price (QAFLOW_LLM_PRICES; formula in :mod:`qaflow.core.cost`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from qaflow.core.cost import format_usd

if TYPE_CHECKING:
    from qaflow.store.base import CallStats


@dataclass
class RunSummary:
    run_id: str
    questions: int = 0  # rows submitted
    unique_questions: int = 0
    validated: int = 0
    exhausted: int = 0
    failed: int = 0
    llm_calls: int = 0
    first_calls: int = 0
    regeneration_calls: int = 0
    retry_calls: int = 0
    llm_errors: dict[str, int] = field(default_factory=dict)
    failure_reasons: list[tuple[str, int]] = field(default_factory=list)  # (error, failed questions), top first
    mean_score_by_generation: dict[int, float] = field(default_factory=dict)
    mean_first_score: float | None = None
    mean_final_score: float | None = None
    quality_gain: float | None = None
    cache_hits: int = 0  # answered at once, from the cache or the store
    answered_from: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    truncated: int = 0  # results whose stored answer was truncated (never validated)
    skipped_rows: dict[str, int] = field(default_factory=dict)
    repaired_rows: int = 0  # data-set rows whose text the text policy repaired (qaflow.core.text)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retry_wait_s: float = 0.0  # delays the retry policy chose after failed calls, summed
    cost: float | None = None  # USD of the run's calls; None when no call had a price
    cost_by_kind: dict[str, float] = field(default_factory=dict)  # first / regeneration / retry -> USD
    cost_per_question: float | None = None  # USD, over the questions that made at least one call
    max_question_cost: float | None = None  # USD of the most expensive question
    elapsed_s: float = 0.0
    questions_per_s: float = 0.0
    threshold: float = 0.0
    max_generations: int = 0
    scorer: dict[str, str] = field(default_factory=dict)
    llm: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["mean_score_by_generation"] = {str(k): round(v, 4) for k, v in self.mean_score_by_generation.items()}
        for key in ("mean_first_score", "mean_final_score", "quality_gain"):
            if out[key] is not None:
                out[key] = round(out[key], 4)
        out["elapsed_s"] = round(self.elapsed_s, 3)
        out["retry_wait_s"] = round(self.retry_wait_s, 3)
        for key in ("cost", "cost_per_question", "max_question_cost"):
            if out[key] is not None:
                out[key] = round(out[key], 8)
        out["cost_by_kind"] = {k: round(v, 8) for k, v in self.cost_by_kind.items()}
        out["questions_per_s"] = round(self.questions_per_s, 3)
        out["failure_reasons"] = [{"reason": r, "questions": n} for r, n in self.failure_reasons]
        return out

    @property
    def succeeded(self) -> int:
        """Questions that reached a terminal state with an answer: validated or exhausted."""
        return self.validated + self.exhausted

    def cost_text(self) -> str:
        """The run's cost in words, for the terminal and the report (USD; tokens/1e6 * price per
        million, see :mod:`qaflow.core.cost`; money shown by :func:`~qaflow.core.cost.format_usd`)."""
        if self.cost is None and not self.llm_calls:
            return "none: no LLM calls (every answer came from the store or the cache)"
        if self.cost is None:
            return "unknown (no price for the model; set QAFLOW_LLM_PRICES)"
        k = self.cost_by_kind
        per_q = ""
        if self.cost_per_question is not None:
            per_q = (f", {format_usd(self.cost_per_question)} per question "
                     f"({format_usd(1000 * self.cost_per_question)} per 1,000)")
        return (f"{format_usd(self.cost)} in all{per_q}: first answers {format_usd(k.get('first', 0.0))}, "
                f"regeneration {format_usd(k.get('regeneration', 0.0))}, retries {format_usd(k.get('retry', 0.0))}")

    def at_once_text(self) -> str:
        """Where the questions answered without the pipeline came from, in words ("" when none):
        "2 from the store, 1 repeated in the data set; as an earlier run scored them". A store's
        or cache's answers keep the scorer and threshold of the run that scored them, which this
        run's settings do not change."""
        said = {"store": "from the store", "cache": "from the cache", "duplicate": "repeated in the data set"}
        sources = ", ".join(f"{n} {said.get(src, src)}" for src, n in sorted(self.answered_from.items()))
        earlier = (self.answered_from.get("store", 0) + self.answered_from.get("cache", 0)) > 0
        return f"{sources}{'; as an earlier run scored them' if earlier else ''}"

    @property
    def extra_calls(self) -> int:
        return self.regeneration_calls + self.retry_calls

    def add_calls(self, calls: CallStats) -> None:
        """Take call counts, errors, tokens, waits and cost from the call ledger."""
        self.llm_calls = calls.calls
        self.first_calls = calls.by_kind.get("first", 0)
        self.regeneration_calls = calls.by_kind.get("regeneration", 0)
        self.retry_calls = calls.by_kind.get("retry", 0)
        self.llm_errors = {k: n for k, n in sorted(calls.by_status.items()) if k != "ok"}
        self.prompt_tokens = calls.prompt_tokens
        self.completion_tokens = calls.completion_tokens
        self.retry_wait_s = calls.retry_wait_s_total
        self.cost = calls.cost_usd
        self.cost_by_kind = dict(calls.cost_by_kind)
        self.cost_per_question = calls.cost_per_question_usd
        self.max_question_cost = calls.max_question_cost_usd
