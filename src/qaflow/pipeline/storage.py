"""The storage stage: results, history, dead letters and the call ledger into the store, then the cache."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from qaflow.cache.base import Cache
from qaflow.core.messages import CallRecord, DeadLetter, ResultMessage, ScoreRecord, Status
from qaflow.store.base import Store, WriteBatch

logger = logging.getLogger(__name__)

CACHED = (Status.VALIDATED, Status.EXHAUSTED)


def failed_result(dl: DeadLetter) -> ResultMessage | None:
    """A dead letter that carries its question ends that question ``failed``."""
    q = dl.question
    if q is None:
        return None
    return ResultMessage(
        question_id=q.question_id,
        status=Status.FAILED,
        title=q.title,
        content=q.content,
        reference_answer=q.reference_answer,
        category=q.category,
        run_id=q.run_id,
        answer=q.best.answer if q.best else None,
        score=q.best.score if q.best else None,
        best_generation=q.best.generation if q.best else None,
        generations=q.generation - 1,
        delivery=q.delivery,
        model=q.best.model if q.best else None,
        error=dl.reason,
        submitted_at=q.submitted_at,
        finished_at=dl.failed_at,
    )


class StorageStage:
    def __init__(self, store: Store, cache: Cache, ttl_s: int) -> None:
        self.store = store
        self.cache = cache
        self.ttl_s = ttl_s

    def handle_batch(self, messages: Sequence[ResultMessage | ScoreRecord | DeadLetter | CallRecord]) -> WriteBatch:
        results = [m for m in messages if isinstance(m, ResultMessage)]
        dead = [m for m in messages if isinstance(m, DeadLetter)]
        results.extend(r for r in map(failed_result, dead) if r is not None)
        batch = WriteBatch(
            results=results,
            attempts=[m for m in messages if isinstance(m, ScoreRecord)],
            dead_letters=dead,
            calls=[m for m in messages if isinstance(m, CallRecord)],
        )
        self.store.write(batch)  # durable before the caller commits offsets
        cacheable = [r.question_id for r in results if r.status in CACHED]
        # Cache what the store now holds (one query for the batch), so a worse duplicate never
        # shadows a better row.
        if cacheable:
            stored = self.store.get_results(cacheable).values()
            self.cache.put_many([r for r in stored if r.status in CACHED], self.ttl_s)
        return batch
