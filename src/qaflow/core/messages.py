"""Versioned message schemas, one per topic, and their JSON codec.

Every message carries ``v`` (schema version) and ``question_id`` (the Kafka key).
``decode`` turns bytes into a validated model or raises :class:`InvalidMessageError`
with a precise reason naming the field, so a consumer can dead-letter the record. Every
string it decodes first goes through the text policy (:mod:`qaflow.core.text`): a lone
surrogate or a NUL written by another producer is repaired here, not in PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import time
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from qaflow.core.errors import ErrorClass, InvalidMessageError
from qaflow.core.ids import ID_LENGTH, question_id
from qaflow.core.text import clean_tree, json_may_need_repair

logger = logging.getLogger(__name__)

SCHEMA_VERSION: Literal[1] = 1
MAX_TITLE = 1_000
MAX_CONTENT = 20_000
MAX_ANSWER = 50_000

QuestionId = Annotated[str, Field(pattern=f"^[0-9a-f]{{{ID_LENGTH}}}$")]
Title = Annotated[str, Field(min_length=1, max_length=MAX_TITLE)]
Content = Annotated[str, Field(max_length=MAX_CONTENT)]
Reference = Annotated[str, Field(min_length=1, max_length=MAX_ANSWER)]
Answer = Annotated[str, Field(max_length=MAX_ANSWER)]
Score = Annotated[float, Field(ge=-1.0, le=1.0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1)]


def now() -> float:
    return time.time()


class Status(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    VALIDATED = "validated"
    EXHAUSTED = "exhausted"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (Status.VALIDATED, Status.EXHAUSTED, Status.FAILED)


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    v: Literal[1] = SCHEMA_VERSION

    def encode(self) -> bytes:
        return self.model_dump_json().encode("utf-8")


Message = _Message  # the public name of every topic message's base class


class BestAttempt(BaseModel):
    """The best scored answer so far; carried along so no stage needs to look it up."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    answer: Answer
    score: Score
    generation: Count
    model: str = ""
    truncated: bool = False  # the answer was cut (provider length limit or MAX_ANSWER)


class QuestionMessage(_Message):
    """``qa.questions``: ask the LLM (first time, after a retry, or to regenerate)."""

    question_id: QuestionId
    title: Title
    content: Content = ""
    reference_answer: Reference
    category: int | None = Field(default=None, ge=1, le=10)
    run_id: str | None = Field(default=None, max_length=200)
    generation: Count = 1  # regenerations asked by the score stage, capped by max_generations
    delivery: Count = 1  # tries of this generation's LLM call, capped by max_delivery_attempts
    submitted_at: float = Field(default_factory=now)
    best: BestAttempt | None = None

    @model_validator(mode="after")
    def _id_matches_text(self) -> QuestionMessage:
        if self.question_id != question_id(self.title, self.content):
            msg = "does not match the hash of title and content"
            raise ValueError(msg)
        return self

    @classmethod
    def new(
        cls,
        title: str,
        content: str,
        reference_answer: str,
        *,
        category: int | None = None,
        run_id: str | None = None,
    ) -> QuestionMessage:
        return cls(
            question_id=question_id(title, content),
            title=title,
            content=content,
            reference_answer=reference_answer,
            category=category,
            run_id=run_id,
        )


class AnswerMessage(_Message):
    """``qa.answers``: one LLM answer, waiting to be scored."""

    question: QuestionMessage
    answer: Answer
    model: str
    provider: str
    latency_ms: float = Field(ge=0)
    prompt_tokens: int | None = Field(default=None, ge=0)
    completion_tokens: int | None = Field(default=None, ge=0)
    answered_at: float = Field(default_factory=now)
    finish_reason: str | None = Field(default=None, max_length=100)  # as the provider said it
    truncated: bool = False  # cut by the provider's token limit or by MAX_ANSWER
    text_changes: tuple[str, ...] = ()  # what the text policy changed, see qaflow.core.text

    @property
    def question_id(self) -> str:
        return self.question.question_id


class ScoreRecord(_Message):
    """``qa.scores``: every scored attempt, for the history. Unique by (question_id, generation)."""

    question_id: QuestionId
    generation: Count
    answer: Answer
    score: Score
    model: str
    scorer: dict[str, str]
    decision: Literal["validated", "regenerate", "exhausted"]
    provider: str = ""
    llm_latency_ms: float = Field(default=0.0, ge=0)
    prompt_tokens: int | None = Field(default=None, ge=0)
    completion_tokens: int | None = Field(default=None, ge=0)
    run_id: str | None = None
    scored_at: float = Field(default_factory=now)
    finish_reason: str | None = Field(default=None, max_length=100)
    truncated: bool = False


class ResultMessage(_Message):
    """``qa.results``: a terminal state. ``answer``/``score`` hold the best attempt."""

    question_id: QuestionId
    status: Literal[Status.VALIDATED, Status.EXHAUSTED, Status.FAILED]
    title: Title
    content: Content = ""
    reference_answer: str = ""
    category: int | None = None
    run_id: str | None = None
    answer: Answer | None = None
    score: Score | None = None
    best_generation: int | None = Field(default=None, ge=1)  # generation of the stored answer
    generations: int = Field(ge=0)  # LLM answers produced for this question
    delivery: int = Field(default=1, ge=0)  # tries of the last LLM call
    model: str | None = None
    scorer: dict[str, str] | None = None
    error: str | None = None
    submitted_at: float
    finished_at: float = Field(default_factory=now)
    truncated: bool = False  # the stored answer was truncated

    @model_validator(mode="after")
    def _fields_fit_status(self) -> ResultMessage:
        if self.status is Status.FAILED:
            if not self.error:
                msg = "a failed result needs an error"
                raise ValueError(msg)
        elif self.answer is None or self.score is None:
            msg = f"a {self.status.value} result needs an answer and a score"
            raise ValueError(msg)
        return self

    @property
    def latency_s(self) -> float:
        return max(0.0, self.finished_at - self.submitted_at)


class RetryMessage(_Message):
    """``qa.retry.*``: a failed LLM call waiting for its delay."""

    question: QuestionMessage
    error_class: ErrorClass
    error: str = Field(max_length=2_000)
    not_before: float  # epoch seconds; re-publish at or after this time
    retry_after_s: float | None = Field(default=None, ge=0)  # the server's Retry-After, if it sent one

    @property
    def question_id(self) -> str:
        return self.question.question_id


class Origin(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: str
    partition: int | None = None
    offset: int | None = None


class DeadLetter(_Message):
    """``qa.dead-letter``: a record that will not be retried, with the reason and its origin.

    When ``question`` is set the question ends ``failed``; a poison record without a
    decodable question is kept for inspection only.
    """

    reason: str = Field(max_length=4_000)
    stage: str
    origin: Origin
    error_class: ErrorClass | None = None
    question_id: str | None = None
    question: QuestionMessage | None = None
    payload: str | None = Field(default=None, max_length=20_000)  # the raw record, truncated
    failed_at: float = Field(default_factory=now)


class CallRecord(_Message):
    """``qa.calls``: one LLM call, for the call ledger. Unique by (question_id, generation, delivery).

    ``status`` is ``ok`` or the :class:`ErrorClass` of the failure; ``retry_wait_s`` is the delay
    the retry policy chose after a failed call (None when the call succeeded or was not retried).
    ``cost_usd`` is priced when the call is made (:mod:`qaflow.core.cost`), None without a price.
    """

    question_id: QuestionId
    generation: Count
    delivery: Count
    provider: str = Field(max_length=200)
    model: str = Field(max_length=200)
    status: str = Field(max_length=20)
    error: str | None = Field(default=None, max_length=2_000)
    latency_ms: float = Field(ge=0)
    prompt_tokens: int | None = Field(default=None, ge=0)
    completion_tokens: int | None = Field(default=None, ge=0)
    finish_reason: str | None = Field(default=None, max_length=100)
    retry_wait_s: float | None = Field(default=None, ge=0)
    cost_usd: float | None = Field(default=None, ge=0)
    run_id: str | None = None
    started_at: float
    finished_at: float = Field(default_factory=now)

    @property
    def kind(self) -> str:
        """first (generation 1, delivery 1), regeneration (generation > 1, delivery 1) or retry."""
        if self.delivery > 1:
            return "retry"
        return "regeneration" if self.generation > 1 else "first"


M = TypeVar("M", bound=_Message)

TOPIC_SCHEMAS: dict[str, type[_Message]] = {}


def _register() -> None:
    from qaflow.core import topics

    TOPIC_SCHEMAS.update(
        {
            topics.QUESTIONS: QuestionMessage,
            topics.ANSWERS: AnswerMessage,
            topics.SCORES: ScoreRecord,
            topics.RESULTS: ResultMessage,
            topics.RETRY_QUOTA: RetryMessage,
            topics.RETRY_OVERLOAD: RetryMessage,
            topics.DEAD_LETTER: DeadLetter,
            topics.CALLS: CallRecord,
        }
    )


_register()


def describe(error: ValidationError) -> str:
    """The first validation problem, as 'field.path: reason'."""
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "record"
    return f"{where}: {first['msg']}"


def decode(schema: type[M], raw: bytes | str) -> M:
    """Bytes to a validated message, or :class:`InvalidMessageError` with a precise reason."""
    try:
        data: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"not valid UTF-8 JSON: {exc}"
        raise InvalidMessageError(msg) from exc
    if json_may_need_repair(raw):
        data, repaired = clean_tree(data)
        if repaired:
            logger.warning("text policy repaired %d strings in a %s record", repaired, schema.__name__)
    if not isinstance(data, dict):
        msg = f"expected a JSON object, got {type(data).__name__}"
        raise InvalidMessageError(msg)
    version = data.get("v")
    if version != SCHEMA_VERSION:
        msg = f"unsupported schema version {version!r} (this build reads {SCHEMA_VERSION})"
        raise InvalidMessageError(msg, "v")
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise InvalidMessageError(first["msg"], field) from exc


def decode_for_topic(topic: str, raw: bytes | str) -> _Message:
    return decode(TOPIC_SCHEMAS[topic], raw)
