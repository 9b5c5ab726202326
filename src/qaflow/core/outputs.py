"""What a stage emits: typed messages for topics. The shell publishes them, then commits.

An :class:`Output` carries the message itself, not its bytes: the publisher (the worker
loop's producer, or the Flink job's sink row) encodes it once, when it writes it, and a
shell that wants a field of what it emits (a score for a metric) reads the message.
"""

from __future__ import annotations

from dataclasses import dataclass

from qaflow.core import topics
from qaflow.core.errors import ErrorClass
from qaflow.core.messages import DeadLetter, Message, Origin, QuestionMessage


@dataclass(frozen=True, slots=True)
class Output:
    """One record to publish: logical topic, key (the question id, ``None`` when unknown), message.

    ``message`` is bytes only for a record passed on unchanged (a copy of one read).
    """

    topic: str
    key: str | None
    message: Message | bytes

    @classmethod
    def of(cls, topic: str, message: Message, key: str | None) -> Output:
        return cls(topic, key, message)

    @property
    def value(self) -> bytes:
        """The record's value: the message as UTF-8 JSON (encoded at each call)."""
        return self.message if isinstance(self.message, bytes) else self.message.encode()


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
    """A dead letter for ``qa.dead-letter``; ``question`` set means the question ends failed.

    ``reason`` is cut to 4,000 characters and ``payload`` (the raw record) to 20,000 bytes,
    the schema's limits.
    """
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
