"""The pure steps of the score job; the PyFlink operators are thin shells around them.

Three steps, in job order:

1. :func:`decode_answer`: a raw ``qa.answers`` record -> :class:`ToScore` (the one decode of
   the record), or a dead letter when no question can be recovered from it;
2. :func:`score_batch`: one batch of (answer, reference) pairs -> scores, with a per-pair
   fallback so one unscorable pair does not take its batch down;
3. :func:`route_scored`: one scored answer plus the question's state -> new state and
   outputs, through :func:`qaflow.core.score_step.score_step`, the decision the in-process
   score stage makes too.

Between steps 1 and 3 the record crosses the Table API (the vectorised scoring UDF), which
carries only typed columns: :func:`pack` pickles the decoded message for that trip and
:func:`unpack` restores it, so the JSON is parsed and validated once.

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
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from qaflow.core import topics
from qaflow.core.errors import ErrorClass, InvalidMessageError
from qaflow.core.faults import Fault, classify, describe
from qaflow.core.messages import AnswerMessage, BestAttempt, Origin, QuestionMessage, decode
from qaflow.core.outputs import Output, dead_letter
from qaflow.core.routing import QuestionState, terminal_marker
from qaflow.core.score_step import Failed, GatePolicy, Outcome, Scored, Step, score_step
from qaflow.scoring.base import Scorer

__all__ = [  # Outcome, Step, GatePolicy and terminal_marker moved to the core; the job's names stay
    "ORIGIN_NOTE",
    "STAGE",
    "BatchScores",
    "GatePolicy",
    "Outcome",
    "Step",
    "ToScore",
    "TopicMap",
    "decode_answer",
    "decode_state",
    "encode_state",
    "pack",
    "poison",
    "route_scored",
    "score_batch",
    "score_bucket",
    "terminal_marker",
    "unpack",
]

STAGE = "score-job"
ORIGIN_NOTE = "partition/offset unknown: the PyFlink Kafka source is value-only"
STATE_VERSION = 1


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

    ``message`` is the decoded :class:`AnswerMessage`; when the record holds a valid question
    but an invalid answer, it is that question, ``error`` says why, ``raw`` keeps the record
    as read (for the dead letter) and the texts are empty: the record skips the scorer and
    ends the question ``failed`` in the keyed step.
    """

    question_id: str
    message: AnswerMessage | QuestionMessage
    candidate: str
    reference: str
    error: str = ""
    raw: str = ""


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
            return ToScore(question.question_id, question, "", "", error=reason, raw=raw)
        return poison(reason, raw, origin_topic, key=qid)
    q = answer.question
    if not q.reference_answer.strip():
        return ToScore(q.question_id, answer, "", "", error="invalid answer: question.reference_answer is blank")
    return ToScore(q.question_id, answer, answer.answer, q.reference_answer)


def pack(item: ToScore) -> bytes:
    """The decoded message (and the raw record of an invalid answer) as bytes, for the trip
    through the scoring table; :func:`unpack` restores it without parsing JSON again.

    Pickle, not JSON: it restores the validated model as it was, with no second validation
    (about 6 us against 25 us for :func:`~qaflow.core.messages.decode` on a 3 KB answer).
    The bytes live only between two operators of one job build.
    """
    return pickle.dumps((item.message, item.raw), protocol=pickle.HIGHEST_PROTOCOL)


def unpack(data: bytes) -> tuple[AnswerMessage | QuestionMessage, str]:
    """What :func:`pack` packed: (the answer, or its question when the answer was invalid; raw)."""
    # Only this job's decode operator writes these bytes; nothing from outside reaches here.
    message, raw = pickle.loads(data)  # noqa: S301
    if not isinstance(message, AnswerMessage | QuestionMessage) or not isinstance(raw, str):
        msg = f"packed record holds {type(message).__name__}, expected an answer or a question"
        raise TypeError(msg)
    return message, raw


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
    identity: dict[str, str]  # the scorer's identity, the same for the whole batch


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
    return BatchScores(scores, errors, scorer.identity)


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


# -- routing ----------------------------------------------------------------------------------


def route_scored(
    state: QuestionState | None,
    message: AnswerMessage | QuestionMessage,
    score: float,
    scorer: Mapping[str, str],
    error: str,
    policy: GatePolicy,
    origin_topic: str,
    raw: str = "",
) -> Step:
    """One scored (or failed) answer, folded into the question's state by :func:`score_step`.

    ``error`` set (the record did not decode, or the scorer failed on it) ends the question
    ``failed``; so does a permanent or unknown error while routing (an out-of-range score
    the message schema refuses). A transient one propagates: the job restarts.
    """
    if not error:
        try:
            return score_step(state, message, Scored(score, scorer), policy)
        except Exception as exc:
            fault = classify(exc)
            if fault is Fault.TRANSIENT:
                raise
            error = f"{STAGE}: {fault.value} error while routing the answer: {describe(exc)}"
    payload = raw.encode("utf-8", "replace") if raw else message.encode()
    failed = Failed(f"{error} ({ORIGIN_NOTE})", STAGE, Origin(topic=origin_topic), payload)
    return score_step(state, message, failed, policy)


def score_bucket(score: float) -> str:
    """Lower bound of the score's tenth in percent, ``"0"`` .. ``"90"`` (1.0 falls in ``"90"``).

    Digits only: Prometheus label values keep them as they are (a dot would become ``_``).
    """
    tenth = min(9, max(0, math.floor(score * 10)))
    return str(tenth * 10)

