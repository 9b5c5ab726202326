"""The retry stage: a failed call waits for its delay, then goes back to ``qa.questions``."""

from __future__ import annotations

import math

from qaflow.core import topics
from qaflow.core.messages import Origin, RetryMessage
from qaflow.core.retry import next_delivery
from qaflow.pipeline.outputs import Output, dead_letter


def is_due(retry: RetryMessage, now: float) -> bool:
    return now >= retry.not_before


def release(retry: RetryMessage, max_delivery_attempts: int, origin: Origin) -> Output:
    """Re-publish with ``delivery + 1``; past the cap, dead-letter it with the last error.

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
