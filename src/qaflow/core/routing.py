"""The quality gate: one scored attempt in, one decision out.

``route`` is the pure policy; :class:`QuestionState` is what the score stage keeps per
question (the Flink job's keyed state), and ``apply`` folds an attempt into it, dropping
re-deliveries so that no question is routed twice to a terminal state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from qaflow.core.messages import BestAttempt


class Route(StrEnum):
    VALIDATED = "validated"
    REGENERATE = "regenerate"
    EXHAUSTED = "exhausted"


def route(score: float, threshold: float, generation: int, max_generations: int, *,
          truncated: bool = False) -> Route:
    """validated if good enough; else regenerate while generations remain; else exhausted.

    A truncated answer (cut by the provider's token limit or by ``MAX_ANSWER``) is never
    validated, however high it scores: its end is missing, and a lexical or BERTScore
    overlap cannot see what is missing. It is kept as a candidate best answer (marked
    truncated) and regenerated while generations remain; see docs/architecture.md.
    """
    if score >= threshold and not truncated:
        return Route.VALIDATED
    if generation < max_generations:
        return Route.REGENERATE
    return Route.EXHAUSTED


def better(candidate: BestAttempt, incumbent: BestAttempt | None) -> BestAttempt:
    """The higher score wins; on a tie the earlier generation stays (it was cheaper)."""
    if incumbent is None or candidate.score > incumbent.score:
        return candidate
    if candidate.score == incumbent.score and candidate.generation < incumbent.generation:
        return candidate
    return incumbent


@dataclass(frozen=True, slots=True)
class QuestionState:
    """Per-question state of the score stage."""

    last_generation: int = 0  # highest generation already routed
    best: BestAttempt | None = None
    terminal: bool = False


def is_duplicate(state: QuestionState | None, generation: int) -> bool:
    """True when this generation was routed already, or the question has ended.

    At-least-once delivery re-delivers answers; dropping them here is what lets every
    question reach exactly one terminal state.
    """
    return state is not None and (state.terminal or generation <= state.last_generation)


def terminal_marker(state: QuestionState) -> QuestionState:
    """What is kept after a terminal state: enough to drop re-deliveries, no answer text."""
    return QuestionState(last_generation=state.last_generation, terminal=True)


@dataclass(frozen=True, slots=True)
class Decision:
    route: Route
    best: BestAttempt  # best attempt including this one
    state: QuestionState


def apply(
    state: QuestionState | None,
    attempt: BestAttempt,
    *,
    threshold: float,
    max_generations: int,
    carried_best: BestAttempt | None = None,
) -> Decision | None:
    """Fold one scored attempt into the state. ``None`` means a duplicate: emit nothing.

    ``carried_best`` is the best attempt the message carried, so the decision is right
    even when the state was lost or expired.
    """
    if is_duplicate(state, attempt.generation):
        return None
    state = state or QuestionState()
    best = better(attempt, better(carried_best, state.best) if carried_best else state.best)
    decided = route(attempt.score, threshold, attempt.generation, max_generations, truncated=attempt.truncated)
    new_state = replace(
        state,
        last_generation=attempt.generation,
        best=best,
        terminal=decided is not Route.REGENERATE,
    )
    return Decision(decided, best, new_state)
