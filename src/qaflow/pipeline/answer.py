"""The llm stage: a question in; an answer, a retry or a dead letter out.

The reply's text goes through the text policy (:mod:`qaflow.core.text`) before it becomes an
:class:`AnswerMessage`: control characters and lone surrogates are repaired and an answer
over ``MAX_ANSWER`` is cut and marked truncated, so no later stage (a Kafka record, a
PostgreSQL row) meets text it cannot carry. What changed is kept in ``text_changes``.

With ``ledger=True`` (the embedded runner and the llm-worker) every call, answered or failed,
also emits one :class:`CallRecord` on ``qa.calls``: the call ledger the storage stage writes
(one row per (question_id, generation, delivery)).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field

from qaflow.core import topics
from qaflow.core.cost import PriceTable, call_cost_usd
from qaflow.core.errors import LlmError, PermanentLlmError
from qaflow.core.messages import MAX_ANSWER, AnswerMessage, CallRecord, Origin, QuestionMessage, RetryMessage
from qaflow.core.outputs import Output, dead_letter
from qaflow.core.retry import RetryPolicy, retry_topic
from qaflow.core.text import repair
from qaflow.llm.base import LlmProvider, LlmReply, LlmRequest
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
    cost_usd: float = 0.0  # of the calls with a known price

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
        prices: PriceTable | None = None,
        model: str = "",
        ledger: bool = False,
    ) -> None:
        validate_template(prompt_template)  # fail at start-up, not on the first question
        self.provider = provider
        self.policy = policy
        self.language = language
        self.prompt_template = prompt_template
        self.stats = AnswerStats()
        self._rng = rng or random.Random()
        self.prices: PriceTable = prices or {}
        self.model = model  # recorded for failed calls (an answered call names its own model)
        self.ledger = ledger  # also emit one CallRecord per call on qa.calls (the runners turn it on)

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
        started = time.time()
        try:
            reply = self.provider.generate(self.request_for(q))
        except LlmError as exc:
            out, delay = self.route_error(q, exc, origin)
            return [out, self.call_record(q, started, exc=exc, retry_wait_s=delay)] if self.ledger else [out]
        call = self.call_record(q, started, reply=reply)  # prices the call (stats.cost_usd) either way
        out = self.on_reply(q, reply, origin)
        return [out, call] if self.ledger else [out]

    def on_reply(self, q: QuestionMessage, reply: LlmReply, origin: Origin) -> Output:
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
            return self.on_error(q, empty, origin)
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
        return Output.of(topics.ANSWERS, answer, q.question_id)

    def call_record(
        self,
        q: QuestionMessage,
        started: float,
        *,
        reply: LlmReply | None = None,
        exc: LlmError | None = None,
        retry_wait_s: float | None = None,
    ) -> Output:
        """The ledger's record of one call (``reply`` when it answered, else ``exc``). Latency is the
        provider's for an answer; for a failure, the wall time of the attempt (a limiter's wait included)."""
        finished = time.time()
        if reply is not None:
            cost = call_cost_usd(self.prices, reply.model, reply.prompt_tokens, reply.completion_tokens)
            self.stats.cost_usd += cost or 0.0
            record = CallRecord(
                question_id=q.question_id, generation=q.generation, delivery=q.delivery,
                provider=reply.provider[:200], model=reply.model[:200], status="ok",
                latency_ms=max(0.0, reply.latency_ms), prompt_tokens=reply.prompt_tokens,
                completion_tokens=reply.completion_tokens,
                finish_reason=None if reply.finish_reason is None else str(reply.finish_reason)[:100],
                cost_usd=cost, run_id=q.run_id, started_at=started, finished_at=finished,
            )
        else:
            if exc is None:
                msg = "call_record needs the reply or the error"
                raise ValueError(msg)
            provider = getattr(self.provider, "name", "")
            record = CallRecord(
                question_id=q.question_id, generation=q.generation, delivery=q.delivery,
                provider=str(provider)[:200], model=self.model[:200],
                status=exc.error_class.value, error=str(exc)[:2000],
                latency_ms=max(0.0, (finished - started) * 1000), retry_wait_s=retry_wait_s,
                run_id=q.run_id, started_at=started, finished_at=finished,
            )
        return Output.of(topics.CALLS, record, q.question_id)

    def on_error(self, q: QuestionMessage, exc: LlmError, origin: Origin) -> Output:
        return self.route_error(q, exc, origin)[0]

    def route_error(self, q: QuestionMessage, exc: LlmError, origin: Origin) -> tuple[Output, float | None]:
        """The retry (and the delay chosen, in s) or the dead letter (delay None) for a failed call."""
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
            return dead_letter(reason, "llm", origin, question=q, error_class=cls), None
        retry = RetryMessage(question=q, error_class=cls, error=str(exc)[:2000], not_before=time.time() + delay,
                             retry_after_s=exc.retry_after_s)
        return Output.of(retry_topic(cls), retry, q.question_id), delay
