"""Per-record fault isolation: the dead letter for a record whose handling failed.

The decision (transient, permanent, unknown) is :mod:`qaflow.core.faults`; this module
turns a permanent failure into a dead letter that carries the question when the record
has one, so the storage stage ends that question ``failed``.
"""

from __future__ import annotations

import logging
from typing import Any

from qaflow.core.errors import ErrorClass
from qaflow.core.faults import Fault, describe
from qaflow.core.messages import (
    AnswerMessage,
    DeadLetter,
    Origin,
    QuestionMessage,
    ResultMessage,
    RetryMessage,
)
from qaflow.core.outputs import Output, dead_letter

logger = logging.getLogger(__name__)


def question_of(message: Any) -> QuestionMessage | None:
    """The question a decoded record is about, when it can be recovered."""
    if isinstance(message, QuestionMessage):
        return message
    if isinstance(message, AnswerMessage | RetryMessage):
        return message.question
    if isinstance(message, DeadLetter):
        return message.question
    if isinstance(message, ResultMessage):
        try:
            q = QuestionMessage.new(
                message.title,
                message.content,
                message.reference_answer,
                category=message.category,
                run_id=message.run_id,
            )
        except ValueError:
            return None
        return q.model_copy(update={"submitted_at": message.submitted_at})
    return None


def question_id_of(message: Any, key: str | None) -> str | None:
    return getattr(message, "question_id", None) or key


def failure_reason(stage: str, fault: Fault, exc: BaseException, tries: int) -> str:
    """``"score stage: permanent error while handling the record (tries 1): ValueError: ..."``."""
    return f"{stage} stage: {fault.value} error while handling the record (tries {tries}): {describe(exc)}"


def handling_dead_letter(
    stage: str,
    message: Any,
    origin: Origin,
    exc: BaseException,
    fault: Fault,
    tries: int,
    *,
    payload: bytes | None = None,
    key: str | None = None,
) -> Output:
    """A dead letter for ``message``, whose handling failed for good (logical topic)."""
    reason = failure_reason(stage, fault, exc, tries)
    question = question_of(message)
    logger.error(
        "dead-lettering question_id=%s topic=%s partition=%s offset=%s: %s",
        question_id_of(message, key),
        origin.topic,
        origin.partition,
        origin.offset,
        reason,
    )
    return dead_letter(
        reason,
        stage,
        origin,
        question=question,
        error_class=ErrorClass.PERMANENT,
        payload=payload,
        key=question_id_of(message, key),
    )


def bare_dead_letter(dl: DeadLetter, exc: BaseException) -> DeadLetter:
    """A dead letter that could not be stored, stripped to what any store can hold: the
    question id, the stage, the origin and why (the question and raw payload dropped)."""
    return DeadLetter(
        reason=f"{dl.reason[:3000]} | storing it failed: {describe(exc)}".replace("\x00", ""),
        stage=dl.stage,
        origin=dl.origin,
        error_class=dl.error_class,
        question_id=dl.question_id,
        question=None,
        payload=None,
    )
