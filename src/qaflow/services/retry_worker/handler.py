"""The retry-worker's own part: the retry heap and its gauges.

Built by :func:`qaflow.services.service.run_service` from :data:`qaflow.core.topology.RETRY`.
A retry of a question that already ended (a dead letter carries it: this worker's, or one read
back at an assignment, :mod:`qaflow.services.ended`) is dropped, not released: a kill between
a dead letter at the delivery cap and the commit never ends a question twice.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter, Gauge

from qaflow.core import topics
from qaflow.core.restore import EndedQuestions
from qaflow.pipeline.retry_worker import RetryWorker
from qaflow.services.ended import dead_letter_restore, release_once
from qaflow.services.service import Built, ServiceContext

logger = logging.getLogger("qaflow.services.retry_worker")

WAITING = Gauge("qaflow_retry_waiting", "Failed calls held until their delay passes.")
NEXT_DUE = Gauge("qaflow_retry_next_due_seconds", "Seconds until the next held call is due (0 when none).")
PAUSED = Gauge("qaflow_retry_paused", "1 while the partitions are paused (QAFLOW_RETRY_MAX_WAITING reached).")
RELEASED = Counter("qaflow_retry_released_total", "Held calls let go, by outcome.", ["outcome"])


def count_release(topic: str) -> None:
    if topic == topics.QUESTIONS:
        RELEASED.labels("requeued").inc()
    elif topic == topics.DEAD_LETTER:
        RELEASED.labels("dead_letter").inc()


def build(ctx: ServiceContext) -> Built:
    s = ctx.settings
    ended = EndedQuestions()
    worker = RetryWorker(
        ctx.consumer(),
        ctx.producer(count_release),
        s.max_delivery_attempts,
        max_waiting=s.retry_max_waiting,
        policy=ctx.policy,
        stop=ctx.stop,
        release_one=release_once(ended, ctx.stage.label),
        restore=dead_letter_restore(ctx.bus, ended, ctx.stage.label),
    )
    WAITING.set_function(lambda: worker.waiting)
    NEXT_DUE.set_function(lambda: max(0.0, (worker.next_due() or time.time()) - time.time()))
    PAUSED.set_function(lambda: 1.0 if getattr(worker, "_paused", False) else 0.0)
    logger.info(
        "holding retries (at most %d in memory); max deliveries %d", s.retry_max_waiting, s.max_delivery_attempts
    )
    return Built(worker)
