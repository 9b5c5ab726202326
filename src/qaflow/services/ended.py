"""The llm-worker's and retry-worker's restore: the questions they ended, read back at a restart.

A worker SIGKILLed after its dead letter was published but before its offsets were committed
hands the record to its successor, which would call the LLM (or release the retry) again and
dead-letter the question a second time. Before the first records of a newly assigned
partition are handled (``Worker(restore=...)``), :func:`dead_letter_restore` reads
``qa.dead-letter`` from the worker loop's ``since_ms`` to the end and marks the questions there
ended (:func:`qaflow.core.restore.fold_dead_letters`); the stage then drops their records.

The read has no upper bound (the score-worker's stops a horizon after the last commit): an
llm call or a held retry may keep a record uncommitted for longer than any interval the
settings bound, and dead letters are few, so reading to the end is cheap and never misses one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import Counter, Histogram

from qaflow.bus.base import Bus
from qaflow.core.messages import Origin, QuestionMessage, RetryMessage
from qaflow.core.outputs import Output
from qaflow.core.restore import DEAD_LETTER_TOPICS, EndedQuestions, first_ends, fold_dead_letters
from qaflow.core.retry import release

logger = logging.getLogger(__name__)

RESTORED = Counter("qaflow_ended_restored_total",
                   "Questions marked ended from qa.dead-letter at an assignment, by stage.", ["stage"])
DROPPED = Counter("qaflow_ended_dropped_total",
                  "Records of questions already ended dropped (no call, no second dead letter), by stage.", ["stage"])
RESTORE_SECONDS = Histogram("qaflow_ended_restore_seconds", "Time to read and fold qa.dead-letter at an assignment.",
                            ["stage"])


def dead_letter_restore(bus: Bus, ended: EndedQuestions, stage: str) -> Callable[[int, int | None], None]:
    """The ``restore`` hook of a worker whose terminal records are dead letters."""

    def restore(since_ms: int, last_commit_ms: int | None) -> None:
        started = time.perf_counter()
        outputs = ((r.topic, r.key, r.value) for r in bus.read_since(DEAD_LETTER_TOPICS, since_ms))
        stats = fold_dead_letters(ended, outputs)
        took = time.perf_counter() - started
        RESTORE_SECONDS.labels(stage).observe(took)
        RESTORED.labels(stage).inc(stats.ended)
        logger.info(
            "ended questions rebuilt from %d dead letter(s) stamped from %d ms: %d question(s) ended, "
            "%d undecodable skipped (%.2f s)", stats.records, since_ms, stats.ended, stats.skipped, took,
        )

    return restore


def dropped(stage: str, question_id: str, what: str) -> None:
    """Count and log a record dropped because its question already ended."""
    DROPPED.labels(stage).inc()
    logger.info("question_id=%s already ended (dead-lettered): %s dropped", question_id, what)


def answer_once(handle: Callable[[QuestionMessage, Origin], list[Output]], ended: EndedQuestions,
                stage: str) -> Callable[[QuestionMessage, Origin], list[Output]]:
    """The llm stage's ``handle`` for questions that did not end; of two dead letters for one
    question (two copies failing at once) only the first is kept."""

    def answer(q: QuestionMessage, origin: Origin) -> list[Output]:
        if q.question_id in ended:
            dropped(stage, q.question_id, f"generation {q.generation} delivery {q.delivery}")
            return []
        outputs, again = first_ends(ended, handle(q, origin))
        if again:
            dropped(stage, q.question_id, "its second dead letter")
        return outputs

    return answer


def release_once(ended: EndedQuestions, stage: str) -> Callable[[RetryMessage, int, Origin], Output | None]:
    """The retry stage's release (:func:`qaflow.core.retry.release`) for questions that did not
    end; None (the record is dropped) for those that did."""

    def release_one(retry: RetryMessage, max_delivery_attempts: int, origin: Origin) -> Output | None:
        q = retry.question
        if q.question_id in ended:
            dropped(stage, q.question_id, f"retry of generation {q.generation} delivery {q.delivery}")
            return None
        kept, _ = first_ends(ended, [release(retry, max_delivery_attempts, origin)])
        return kept[0] if kept else None

    return release_one
