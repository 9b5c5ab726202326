"""The pure steps of the score job; the PyFlink operators are thin shells around them.

Three steps, in job order:

1. :func:`decode_answer`: a raw ``qa.answers`` record -> :class:`ToScore`, or a dead letter
   when no question can be recovered from it;
2. :func:`score_batch`: one batch of (answer, reference) pairs -> scores, with a per-pair
   fallback so one unscorable pair does not take its batch down;
3. :func:`route_scored`: one scored answer plus the question's state -> new state and
   outputs, through :func:`qaflow.pipeline.score.decide`.

PyFlink's Kafka source is value-only, so a dead letter's origin names the topic but not the
partition or offset (:data:`ORIGIN_NOTE`).

Failure handling (:mod:`qaflow.core.faults`): a transient error (the scorer service down)
propagates, so the job fails and restarts from its last checkpoint, losing nothing. Any
other error while scoring or routing one record ends that question ``failed`` with a dead
letter; the job has no per-record try counter that survives a restart, so an unknown error
counts as permanent at once rather than restarting the job in a loop.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from qaflow.core import topics
from qaflow.core.errors import ErrorClass, InvalidMessageError
from qaflow.core.faults import Fault, classify, describe
from qaflow.core.messages import AnswerMessage, BestAttempt, Origin, QuestionMessage, decode
from qaflow.core.routing import QuestionState, Route, route
from qaflow.pipeline.outputs import Output, dead_letter
from qaflow.pipeline.score import GatePolicy, decide
from qaflow.scoring.base import Scorer

STAGE = "score-job"
ORIGIN_NOTE = "partition/offset unknown: the PyFlink Kafka source is value-only"
STATE_VERSION = 1


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
class TopicMap:
    """Logical topic names (:mod:`qaflow.core.topics`) -> the names on this cluster."""

    names: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, prefix: str = "", overrides: Mapping[str, str] | None = None) -> TopicMap:
        names = {name: prefix + name for name in topics.ALL}
        names.update({k: v for k, v in (overrides or {}).items() if v})
        return cls(names)

    def __getitem__(self, logical: str) -> str:
        return self.names.get(logical, logical)

    def place(self, out: Output) -> Output:
        return replace(out, topic=self[out.topic])


@dataclass(frozen=True, slots=True)
class ToScore:
    """A decoded answer on its way to the scorer.

    ``error`` is set (and the texts are empty) when the record holds a valid question but an
    invalid answer: it skips the scorer and ends the question ``failed`` in the keyed step.
    """

    question_id: str
    payload: str
    candidate: str
    reference: str
    error: str = ""


def _lenient_question(data: Any) -> tuple[str | None, QuestionMessage | None]:
    """The question id and, when it validates, the question of a record that failed its schema."""
    if not isinstance(data, dict) or not isinstance(data.get("question"), dict):
        return None, None
    raw_q = data["question"]
    qid = raw_q.get("question_id") if isinstance(raw_q.get("question_id"), str) else None
    try:
        return qid, QuestionMessage.model_validate(raw_q)
    except ValueError:
        return qid, None


def decode_answer(raw: str, origin_topic: str) -> ToScore | Output:
    """A raw record -> :class:`ToScore`, or a dead-letter :class:`Output` (logical topic)."""
    try:
        answer = decode(AnswerMessage, raw)
    except InvalidMessageError as exc:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        qid, question = _lenient_question(data)
        reason = f"invalid answer: {exc}"
        if question is not None:
            return ToScore(question.question_id, raw, "", "", error=reason)
        return poison(reason, raw, origin_topic, key=qid)
    q = answer.question
    if not q.reference_answer.strip():
        return ToScore(q.question_id, raw, "", "", error="invalid answer: question.reference_answer is blank")
    return ToScore(q.question_id, raw, answer.answer, q.reference_answer)


def poison(reason: str, raw: str, origin_topic: str, *, key: str | None = None) -> Output:
    """A dead letter for a record with no usable question: kept for inspection only."""
    return dead_letter(
        f"{reason} ({ORIGIN_NOTE})",
        STAGE,
        Origin(topic=origin_topic),
        error_class=ErrorClass.PERMANENT,
        payload=raw.encode("utf-8", "replace"),
        key=key,
    )


# -- scoring ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchScores:
    scores: list[float]  # NaN where not scored
    errors: list[str]  # "" where scored
    identity: str  # the scorer's identity as a JSON object, the same for the whole batch


def _clamp(value: float) -> float:
    # bert-score's F1 can leave [-1, 1] by a rounding error; the message schemas cannot.
    return min(1.0, max(-1.0, value))


def score_batch(scorer: Scorer, candidates: Sequence[str], references: Sequence[str]) -> BatchScores:
    """Score one batch; pairs with an empty reference (decode errors) are skipped.

    A retriable :class:`ScoringError` (scorer service down, timeout) propagates: the job fails
    and restarts from its last checkpoint, so nothing is lost. A permanent one is retried
    pair by pair, and only the pairs that fail alone get an error.
    """
    n = len(candidates)
    scores, errors = [math.nan] * n, [""] * n
    live = [i for i in range(n) if references[i]]
    if live:
        try:
            got = scorer.score([candidates[i] for i in live], [references[i] for i in live])
            results: list[tuple[int, float | None, str]] = [(i, s, "") for i, s in zip(live, got, strict=True)]
        except Exception as exc:
            if classify(exc) is Fault.TRANSIENT:
                raise
            results = [(i, *_score_one(scorer, candidates[i], references[i])) for i in live]
        for i, value, error in results:
            if error or value is None or not math.isfinite(value):
                errors[i] = error or f"scorer returned {value!r}"
            else:
                scores[i] = _clamp(value)
    return BatchScores(scores, errors, json.dumps(scorer.identity, sort_keys=True))


def _score_one(scorer: Scorer, candidate: str, reference: str) -> tuple[float | None, str]:
    try:
        return scorer.score([candidate], [reference])[0], ""
    except Exception as exc:
        if classify(exc) is Fault.TRANSIENT:
            raise
        return None, f"scoring failed: {describe(exc)}"


# -- keyed state ------------------------------------------------------------------------------


def encode_state(state: QuestionState) -> str:
    """JSON for ``ValueState[str]``: readable in a savepoint, stable across Python versions."""
    best = state.best.model_dump() if state.best is not None else None
    return json.dumps({"v": STATE_VERSION, "g": state.last_generation, "t": state.terminal, "best": best})


def decode_state(text: str | None) -> QuestionState | None:
    if not text:
        return None
    data = json.loads(text)
    if data.get("v") != STATE_VERSION:
        msg = f"keyed state version {data.get('v')!r}, this build reads {STATE_VERSION}"
        raise ValueError(msg)
    best = BestAttempt.model_validate(data["best"]) if data.get("best") else None
    return QuestionState(last_generation=int(data["g"]), best=best, terminal=bool(data["t"]))


def terminal_marker(state: QuestionState) -> QuestionState:
    """What is kept after a terminal state: enough to drop re-deliveries, no answer text."""
    return QuestionState(last_generation=state.last_generation, terminal=True)


# -- routing ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    state: QuestionState | None  # the state to store (unchanged on a duplicate)
    outputs: list[Output]  # logical topics
    outcome: Outcome
    score: float | None = None


def _is_duplicate(state: QuestionState | None, generation: int) -> bool:
    return state is not None and (state.terminal or generation <= state.last_generation)


def route_scored(
    state: QuestionState | None,
    payload: str,
    score: float,
    scorer: Mapping[str, str],
    error: str,
    policy: GatePolicy,
    origin_topic: str,
) -> Step:
    """One scored (or failed) answer, folded into the question's state."""
    if error:
        return _route_failed(state, payload, error, origin_topic)
    try:
        answer = decode(AnswerMessage, payload)
        new_state, outputs = decide(answer, score, dict(scorer), state, policy)
    except Exception as exc:
        fault = classify(exc)
        if fault is Fault.TRANSIENT:
            raise
        reason = f"{STAGE}: {fault.value} error while routing the answer: {describe(exc)}"
        return _route_failed(state, payload, reason, origin_topic)
    if not outputs:
        return Step(state, [], Outcome.DUPLICATE, score)
    decided = route(score, policy.threshold, answer.question.generation, policy.max_generations,
                    truncated=answer.truncated)
    return Step(new_state, outputs, _OUTCOME[decided], score)


def _route_failed(state: QuestionState | None, payload: str, error: str, origin_topic: str) -> Step:
    try:
        data = json.loads(payload)
    except ValueError:
        data = None
    _, question = _lenient_question(data)
    if question is None:  # cannot happen for rows decode_answer made; kept safe anyway
        return Step(state, [poison(error, payload, origin_topic)], Outcome.FAILED)
    if _is_duplicate(state, question.generation):
        return Step(state, [], Outcome.DUPLICATE)
    out = dead_letter(
        f"{error} ({ORIGIN_NOTE})",
        STAGE,
        Origin(topic=origin_topic),
        question=question,
        error_class=ErrorClass.PERMANENT,
        payload=payload.encode("utf-8", "replace"),
    )
    last = max(question.generation, state.last_generation if state else 0)
    return Step(QuestionState(last_generation=last, terminal=True), [out], Outcome.FAILED)


def score_bucket(score: float) -> str:
    """Lower bound of the score's tenth in percent, ``"0"`` .. ``"90"`` (1.0 falls in ``"90"``).

    Digits only: Prometheus label values keep them as they are (a dot would become ``_``).
    """
    tenth = min(9, max(0, math.floor(score * 10)))
    return str(tenth * 10)

