"""What a run bought and what it cost, as one flat, JSON-ready summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
        out["questions_per_s"] = round(self.questions_per_s, 3)
        return out

    @property
    def extra_calls(self) -> int:
        return self.regeneration_calls + self.retry_calls
