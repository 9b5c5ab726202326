"""The threshold study, from recorded attempts: what each threshold would pass and cost.

For a threshold at or below the one the run used, the recorded attempts replay the loop
exactly: the run stopped at the first generation scoring at least its own threshold, so
the first generation scoring at least a lower one was recorded too. Above the run's
threshold only first-attempt pass rates are known.

With the call ledger's cost of each (question, generation) (every call of that generation,
retries included; see :mod:`qaflow.core.cost`), each replayed threshold also says what it
would have cost and what quality it would have bought: the mean stored (best) score over
the generations it would have used, against the mean first-answer score.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ThresholdPoint:
    threshold: float
    first_pass_rate: float  # share of first answers at or above the threshold
    final_pass_rate: float | None  # after regeneration; None where it cannot be replayed
    calls_per_question: float | None  # LLM answers needed per question (without retries)
    mean_score: float | None = None  # mean stored (best used) score after regeneration; None where not replayed
    quality_gain: float | None = None  # mean_score minus the mean first-answer score
    cost_per_question: float | None = None  # USD per question; None without priced calls or a replay


def by_question(attempts: Iterable[tuple[str, int, float]]) -> dict[str, list[float]]:
    """Scores per question, ordered by generation."""
    grouped: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for qid, gen, score in attempts:
        grouped[qid].append((gen, score))
    return {q: [s for _, s in sorted(v)] for q, v in grouped.items()}


def study(
    scores: dict[str, list[float]],
    run_threshold: float,
    max_generations: int,
    grid: Sequence[float],
    costs: Mapping[tuple[str, int], float] | None = None,
) -> list[ThresholdPoint]:
    """One point per threshold of ``grid``; ``costs`` maps (question_id, generation) to USD."""
    if not scores:
        return []
    n = len(scores)
    mean_first = sum(s[0] for s in scores.values()) / n
    priced = bool(costs)
    points = []
    for t in grid:
        first = sum(1 for s in scores.values() if s[0] >= t) / n
        if t > run_threshold + 1e-12:
            points.append(ThresholdPoint(t, first, None, None))
            continue
        passed = 0
        calls = 0
        best_total = 0.0
        spent = 0.0
        for qid, s in scores.items():
            hit = next((i for i, v in enumerate(s[:max_generations]) if v >= t), None)
            passed += hit is not None
            used = (hit + 1) if hit is not None else min(len(s), max_generations)
            calls += used
            best_total += max(s[:used])
            if costs:
                spent += sum(costs.get((qid, g), 0.0) for g in range(1, used + 1))
        mean = best_total / n
        points.append(ThresholdPoint(t, first, passed / n, calls / n, mean, mean - mean_first,
                                     spent / n if priced else None))
    return points
