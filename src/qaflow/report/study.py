"""The threshold study, from recorded attempts: what each threshold would pass and cost.

For a threshold at or below the one the run used, the recorded attempts replay the loop
exactly: the run stopped at the first generation scoring at least its own threshold, so
the first generation scoring at least a lower one was recorded too. Above the run's
threshold only first-attempt pass rates are known.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ThresholdPoint:
    threshold: float
    first_pass_rate: float  # share of first answers at or above the threshold
    final_pass_rate: float | None  # after regeneration; None where it cannot be replayed
    calls_per_question: float | None  # LLM answers needed per question (without retries)


def by_question(attempts: Iterable[tuple[str, int, float]]) -> dict[str, list[float]]:
    """Scores per question, ordered by generation."""
    grouped: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for qid, gen, score in attempts:
        grouped[qid].append((gen, score))
    return {q: [s for _, s in sorted(v)] for q, v in grouped.items()}


def study(
    scores: dict[str, list[float]], run_threshold: float, max_generations: int, grid: Sequence[float]
) -> list[ThresholdPoint]:
    if not scores:
        return []
    n = len(scores)
    points = []
    for t in grid:
        first = sum(1 for s in scores.values() if s[0] >= t) / n
        if t > run_threshold + 1e-12:
            points.append(ThresholdPoint(t, first, None, None))
            continue
        passed = 0
        calls = 0
        for s in scores.values():
            hit = next((i for i, v in enumerate(s[:max_generations]) if v >= t), None)
            passed += hit is not None
            calls += (hit + 1) if hit is not None else min(len(s), max_generations)
        points.append(ThresholdPoint(t, first, passed / n, calls / n))
    return points
