"""What a stage emits: records for topics. The shell publishes them, then commits."""

from __future__ import annotations

from dataclasses import dataclass

from qaflow.core import topics
from qaflow.core.errors import ErrorClass
from qaflow.core.messages import DeadLetter, Origin, QuestionMessage, _Message


@dataclass(frozen=True, slots=True)
class Output:
    topic: str
    key: str | None
    value: bytes

    @classmethod
    def of(cls, topic: str, message: _Message, key: str | None) -> Output:
        return cls(topic, key, message.encode())


def dead_letter(
    reason: str,
    stage: str,
    origin: Origin,
    *,
    question: QuestionMessage | None = None,
    error_class: ErrorClass | None = None,
    payload: bytes | None = None,
    key: str | None = None,
) -> Output:
    qid = question.question_id if question else key
    dl = DeadLetter(
        reason=reason[:4000],
        stage=stage,
        origin=origin,
        error_class=error_class,
        question_id=qid,
        question=question,
        payload=None if payload is None else payload[:20_000].decode("utf-8", "replace"),
    )
    return Output.of(topics.DEAD_LETTER, dl, qid)
