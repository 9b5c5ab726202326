"""The score decision, written once: one scored (or unscorable) answer in; the state to keep,
the records to emit and the outcome out.

Both score shells call :func:`score_step` and add nothing to the decision: the in-process
stage (:class:`qaflow.pipeline.score.ScoreStage`, which the embedded run and the
score-worker service use) keeps the returned state in a mapping, the PyFlink job
(:class:`qaflow.flinkjob.operators.RouteAnswers`) in keyed ``ValueState``; both emit the
returned outputs as they are.

The rules, in order:

1. **duplicate**: a generation already routed, or any answer after the question ended
   (:func:`~qaflow.core.routing.is_duplicate`): keep the state unchanged, emit nothing.
   At-least-once delivery repeats answers; this keeps one terminal state per question.
2. **failed** (:class:`Failed`: the answer could not be scored or routed): a dead letter that
   carries the question, so the storage stage ends it ``failed``.
3. **scored** (:class:`Scored`): :func:`~qaflow.core.routing.apply` folds the attempt into
   the state (the one call of :func:`~qaflow.core.routing.route`); a history record goes to
   ``qa.scores``, then either the question again (``qa.questions``, generation + 1, the best
   attempt so far carried) or its result (``qa.results``, the best attempt).

A terminal state (2, or 3 unless regenerating) is kept as its marker only
(:func:`~qaflow.core.routing.terminal_marker`): the best attempt has left with the result,
and the marker is all a re-delivery needs to be dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from qaflow.core import topics
from qaflow.core.errors import ErrorClass
from qaflow.core.messages import (
    AnswerMessage,
    BestAttempt,
    Origin,
    QuestionMessage,
    ResultMessage,
    ScoreRecord,
    Status,
)
from qaflow.core.outputs import Output, dead_letter
from qaflow.core.retry import next_generation
from qaflow.core.routing import QuestionState, Route, apply, is_duplicate, terminal_marker

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GatePolicy:
    """The quality gate: ``threshold`` on the score (the scorer's scale, BERTScore F1 in
    [-1, 1]) and the cap on generations (``QAFLOW_THRESHOLD``, ``QAFLOW_MAX_GENERATIONS``)."""

    threshold: float
    max_generations: int


class Outcome(StrEnum):
    VALIDATED = "validated"
    REGENERATED = "regenerated"
    EXHAUSTED = "exhausted"
    DUPLICATE = "duplicate"
    FAILED = "failed"  # dead-lettered with its question: the question ends failed


_OUTCOME = {
    Route.VALIDATED: Outcome.VALIDATED,
    Route.REGENERATE: Outcome.REGENERATED,
    Route.EXHAUSTED: Outcome.EXHAUSTED,
}


@dataclass(frozen=True, slots=True)
class Scored:
    """The answer's score and the identity of the scorer that gave it (stored with it)."""

    score: float
    scorer: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Failed:
    """The answer could not be scored or routed, for good: ``reason`` goes into the dead
    letter, with the ``stage`` and ``origin`` that name where, and ``payload`` (the record as
    read, when the shell has it)."""

    reason: str
    stage: str
    origin: Origin
    payload: bytes | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """What :func:`score_step` decided.

    ``state`` is what to store for the question: the very object passed in on a duplicate
    (nothing to write), else the new state (a terminal marker once the question ended).
    ``outputs`` are typed messages for logical topics. ``score`` is the score given, ``None``
    for a failed answer.
    """

    state: QuestionState | None
    outputs: list[Output]
    outcome: Outcome
    score: float | None = None


def score_step(
    state: QuestionState | None,
    answer: AnswerMessage | QuestionMessage,
    result: Scored | Failed,
    policy: GatePolicy,
) -> Step:
    """Fold one answer's score (or failure) into the question's state; see the module doc.

    ``answer`` is a :class:`QuestionMessage` only when the answer record itself was invalid
    but its question could be recovered; that needs a :class:`Failed` result (TypeError
    otherwise). Errors: pydantic's ValidationError when the score is outside the message
    schema's [-1, 1] (the shell decides what a routing error means).
    """
    question = answer if isinstance(answer, QuestionMessage) else answer.question
    if isinstance(result, Failed):
        return _failed(state, question, result)
    if not isinstance(answer, AnswerMessage):
        msg = "a scored result needs the AnswerMessage, not only its question"
        raise TypeError(msg)
    return _scored(state, answer, result, policy)


def _duplicate(state: QuestionState | None, question: QuestionMessage, score: float | None) -> Step:
    logger.info("duplicate answer dropped question_id=%s generation=%d", question.question_id, question.generation)
    return Step(state, [], Outcome.DUPLICATE, score)


def _failed(state: QuestionState | None, question: QuestionMessage, failed: Failed) -> Step:
    if is_duplicate(state, question.generation):
        return _duplicate(state, question, None)
    out = dead_letter(
        failed.reason,
        failed.stage,
        failed.origin,
        question=question,
        error_class=ErrorClass.PERMANENT,
        payload=failed.payload,
    )
    # Not a duplicate, so this generation is past every one routed before.
    return Step(terminal_marker(QuestionState(last_generation=question.generation)), [out], Outcome.FAILED)


def _scored(state: QuestionState | None, answer: AnswerMessage, scored: Scored, policy: GatePolicy) -> Step:
    q = answer.question
    attempt = BestAttempt(answer=answer.answer, score=scored.score, generation=q.generation, model=answer.model,
                          truncated=answer.truncated)
    decision = apply(
        state, attempt, threshold=policy.threshold, max_generations=policy.max_generations, carried_best=q.best
    )
    if decision is None:
        return _duplicate(state, q, scored.score)
    scorer = dict(scored.scorer)
    history = ScoreRecord(
        question_id=q.question_id,
        generation=q.generation,
        answer=answer.answer,
        score=scored.score,
        model=answer.model,
        scorer=scorer,
        decision=decision.route.value,
        provider=answer.provider,
        llm_latency_ms=answer.latency_ms,
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        run_id=q.run_id,
        finish_reason=answer.finish_reason,
        truncated=answer.truncated,
    )
    out = [Output.of(topics.SCORES, history, q.question_id)]
    best = decision.best
    if decision.route is Route.REGENERATE:
        again = q.model_copy(
            update={
                "generation": next_generation(q.generation, policy.max_generations),
                "delivery": 1,
                "best": best,
            }
        )
        out.append(Output.of(topics.QUESTIONS, again, q.question_id))
        return Step(decision.state, out, Outcome.REGENERATED, scored.score)
    result = ResultMessage(
        question_id=q.question_id,
        status=Status.VALIDATED if decision.route is Route.VALIDATED else Status.EXHAUSTED,
        title=q.title,
        content=q.content,
        reference_answer=q.reference_answer,
        category=q.category,
        run_id=q.run_id,
        answer=best.answer,
        score=best.score,
        best_generation=best.generation,
        generations=q.generation,
        delivery=q.delivery,
        model=best.model,
        scorer=scorer,
        submitted_at=q.submitted_at,
        truncated=best.truncated,
    )
    out.append(Output.of(topics.RESULTS, result, q.question_id))
    return Step(terminal_marker(decision.state), out, _OUTCOME[decision.route], scored.score)
