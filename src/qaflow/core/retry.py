"""How a failed LLM call is retried, by error class, and the delivery cap.

- quota (429): honour Retry-After (capped), else a fixed delay;
- overload (5xx) and timeout: honour Retry-After (capped the same way) when the server sent
  one (RFC 9110, section 10.2.3: it applies to 503 as much as to 429), else exponential
  backoff with full jitter, capped;
- permanent: no retry, dead letter.

The random source is passed in, so the policy is a pure function under test.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from qaflow.core import topics
from qaflow.core.errors import ErrorClass
from qaflow.core.messages import Origin, RetryMessage
from qaflow.core.outputs import Output, dead_letter
from qaflow.core.settings import PipelineSettings, RetrySettings


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_delivery_attempts: int = 5
    quota_delay_s: float = 20.0
    retry_after_cap_s: float = 300.0
    overload_base_s: float = 1.0
    overload_cap_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_delivery_attempts < 1:
            msg = "max_delivery_attempts must be >= 1"
            raise ValueError(msg)
        if not 0 < self.overload_base_s <= self.overload_cap_s:
            msg = "need 0 < overload_base_s <= overload_cap_s"
            raise ValueError(msg)

    @classmethod
    def from_settings(cls, s: PipelineSettings | RetrySettings) -> RetryPolicy:
        """From a service's settings (which mix in PipelineSettings and RetrySettings)."""
        return cls(
            max_delivery_attempts=s.max_delivery_attempts,  # type: ignore[union-attr]
            quota_delay_s=s.retry_quota_delay_s,  # type: ignore[union-attr]
            retry_after_cap_s=s.retry_after_cap_s,  # type: ignore[union-attr]
            overload_base_s=s.retry_overload_base_s,  # type: ignore[union-attr]
            overload_cap_s=s.retry_overload_cap_s,  # type: ignore[union-attr]
        )

    def delay(
        self,
        error_class: ErrorClass,
        delivery: int,
        *,
        retry_after_s: float | None = None,
        rng: random.Random | None = None,
    ) -> float | None:
        """Seconds to wait before try ``delivery + 1``, or ``None`` for the dead letter.

        ``delivery`` is the try that just failed (1 for the first).
        """
        if error_class is ErrorClass.PERMANENT or delivery >= self.max_delivery_attempts:
            return None
        if retry_after_s is not None and retry_after_s >= 0:
            return min(retry_after_s, self.retry_after_cap_s)
        if error_class is ErrorClass.QUOTA:
            return self.quota_delay_s
        ceiling = min(self.overload_cap_s, self.overload_base_s * 2 ** (delivery - 1))
        return (rng or random).uniform(0.0, ceiling)


def retry_topic(error_class: ErrorClass) -> str:
    """Quota errors and overloads wait on separate topics, so a long quota wait never
    delays a short backoff."""
    if error_class is ErrorClass.QUOTA:
        return topics.RETRY_QUOTA
    if error_class in (ErrorClass.OVERLOAD, ErrorClass.TIMEOUT):
        return topics.RETRY_OVERLOAD
    return topics.DEAD_LETTER


def next_delivery(delivery: int, max_delivery_attempts: int) -> int:
    """The capped ``delivery`` counter: the try after ``delivery``."""
    if delivery >= max_delivery_attempts:
        msg = f"delivery {delivery} already reached the cap {max_delivery_attempts}"
        raise ValueError(msg)
    return delivery + 1


def next_generation(generation: int, max_generations: int) -> int:
    """The capped ``generation`` counter: the regeneration after ``generation``."""
    if generation >= max_generations:
        msg = f"generation {generation} already reached the cap {max_generations}"
        raise ValueError(msg)
    return generation + 1


def is_due(retry: RetryMessage, now: float) -> bool:
    return now >= retry.not_before


def release(retry: RetryMessage, max_delivery_attempts: int, origin: Origin) -> Output:
    """A waited retry, due now: back to ``qa.questions`` with ``delivery + 1``; past the cap,
    a dead letter with the last error.

    Raises ValueError for a due time that is not a finite number (JSON ``NaN`` passes the
    schema): such a record can never be due, and would stop the heap behind it.
    """
    if not math.isfinite(retry.not_before):
        msg = f"not_before is {retry.not_before!r}, not a time"
        raise ValueError(msg)
    q = retry.question
    if q.delivery >= max_delivery_attempts:
        reason = f"gave up after {q.delivery} deliveries; last error ({retry.error_class.value}): {retry.error}"
        return dead_letter(reason, "retry", origin, question=q, error_class=retry.error_class)
    again = q.model_copy(update={"delivery": next_delivery(q.delivery, max_delivery_attempts)})
    return Output.of(topics.QUESTIONS, again, q.question_id)
