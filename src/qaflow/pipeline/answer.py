"""The llm stage: a question in; an answer, a retry or a dead letter out.

The reply's text goes through the text policy (:mod:`qaflow.core.text`) before it becomes an
:class:`AnswerMessage`: control characters and lone surrogates are repaired and an answer
over ``MAX_ANSWER`` is cut and marked truncated, so no later stage (a Kafka record, a
PostgreSQL row) meets text it cannot carry. What changed is kept in ``text_changes``.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field

from qaflow.core import topics
from qaflow.core.errors import LlmError, PermanentLlmError
from qaflow.core.messages import MAX_ANSWER, AnswerMessage, Origin, QuestionMessage, RetryMessage
from qaflow.core.outputs import Output, dead_letter
from qaflow.core.retry import RetryPolicy, retry_topic
from qaflow.core.text import repair
from qaflow.llm.base import LlmProvider, LlmRequest
from qaflow.llm.prompt import render_prompt, validate_template

logger = logging.getLogger(__name__)


@dataclass
class AnswerStats:
    calls: int = 0  # every LLM call made
    first_calls: int = 0  # generation 1, delivery 1
    regeneration_calls: int = 0  # generation > 1, delivery 1
    retry_calls: int = 0  # delivery > 1
    errors: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms_total: float = 0.0

    def count(self, q: QuestionMessage) -> None:
        self.calls += 1
        if q.delivery > 1:
            self.retry_calls += 1
        elif q.generation > 1:
            self.regeneration_calls += 1
        else:
            self.first_calls += 1


class AnswerStage:
    def __init__(
        self,
        provider: LlmProvider,
        policy: RetryPolicy,
        *,
        language: str = "en",
        prompt_template: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        validate_template(prompt_template)  # fail at start-up, not on the first question
        self.provider = provider
        self.policy = policy
        self.language = language
        self.prompt_template = prompt_template
        self.stats = AnswerStats()
        self._rng = rng or random.Random()

    def request_for(self, q: QuestionMessage) -> LlmRequest:
        return LlmRequest(
            question_id=q.question_id,
            title=q.title,
            content=q.content,
            generation=q.generation,
            delivery=q.delivery,
            prompt=render_prompt(q.title, q.content, self.language, self.prompt_template),
            language=self.language,
            reference_answer=q.reference_answer,
        )

    def handle(self, q: QuestionMessage, origin: Origin) -> list[Output]:
        self.stats.count(q)
        try:
            reply = self.provider.generate(self.request_for(q))
        except LlmError as exc:
            return [self.on_error(q, exc, origin)]
        self.stats.prompt_tokens += reply.prompt_tokens or 0
        self.stats.completion_tokens += reply.completion_tokens or 0
        self.stats.latency_ms_total += reply.latency_ms
        text = repair(reply.text, MAX_ANSWER)
        if text.changed:
            logger.warning("answer repaired question_id=%s generation=%d: %s", q.question_id, q.generation,
                           "; ".join(text.changes))
        if not text.text.strip():
            empty = PermanentLlmError(f"{reply.provider}: no answer text left after the text policy "
                                      f"({'; '.join(text.changes)})")
            return [self.on_error(q, empty, origin)]
        answer = AnswerMessage(
            question=q,
            answer=text.text,
            model=reply.model,
            provider=reply.provider,
            latency_ms=reply.latency_ms,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            finish_reason=None if reply.finish_reason is None else str(reply.finish_reason)[:100],
            truncated=reply.truncated or text.truncated,
            text_changes=text.changes,
        )
        return [Output.of(topics.ANSWERS, answer, q.question_id)]

    def on_error(self, q: QuestionMessage, exc: LlmError, origin: Origin) -> Output:
        cls = exc.error_class
        self.stats.errors[cls.value] = self.stats.errors.get(cls.value, 0) + 1
        delay = self.policy.delay(cls, q.delivery, retry_after_s=exc.retry_after_s, rng=self._rng)
        logger.info(
            "llm call failed question_id=%s generation=%d delivery=%d class=%s delay=%s: %s",
            q.question_id,
            q.generation,
            q.delivery,
            cls.value,
            delay,
            exc,
        )
        if delay is None:
            reason = (
                f"permanent LLM error: {exc}"
                if not exc.retriable
                else f"gave up after {q.delivery} deliveries; last error ({cls.value}): {exc}"
            )
            return dead_letter(reason, "llm", origin, question=q, error_class=cls)
        retry = RetryMessage(question=q, error_class=cls, error=str(exc)[:2000], not_before=time.time() + delay,
                             retry_after_s=exc.retry_after_s)
        return Output.of(retry_topic(cls), retry, q.question_id)
