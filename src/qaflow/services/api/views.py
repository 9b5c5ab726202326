"""``GET /v1/questions/<id>``: the cache first, then one store statement.

A terminal result in the cache (Redis) answers ``status`` and ``result`` without the store;
the scored attempts, which the cache does not hold, come from one indexed store query. When
the store is unreachable then, the cached answer is still given, with ``attempts: null``
(docs/api.md). On a cache miss, one statement reads state, result and attempts together
(:meth:`qaflow.store.postgres.PostgresStore.question_view`), and a terminal result that is
not ``failed`` refills the cache, as a POST does (:meth:`qaflow.pipeline.submit.Submitter.lookup`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from qaflow.cache.base import Cache
from qaflow.core.messages import ResultMessage, ScoreRecord, Status
from qaflow.services.web.app import unavailable_dependency
from qaflow.store.base import Store
from qaflow.store.postgres import PostgresStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QuestionView:
    status: Status
    result: ResultMessage | None
    attempts: list[ScoreRecord] | None  # None: the store could not be asked (the result came from the cache)


def question_view(store: Store, cache: Cache, ttl_s: int, question_id: str) -> QuestionView | None:
    """What the api answers for ``question_id``; None when no such question is known.

    Raises the store's errors, except an outage after a cache hit (then ``attempts`` is None).
    """
    cached = cache.get(question_id)
    if cached is not None:
        try:
            attempts: list[ScoreRecord] | None = store.get_attempts(question_id)
        except Exception as exc:
            if unavailable_dependency(exc) is None:
                raise
            logger.warning("question_id=%s answered from the cache without attempts: store unavailable: %s",
                           question_id, exc)
            attempts = None
        return QuestionView(cached.status, cached, attempts)
    if isinstance(store, PostgresStore):
        status, result, attempts = store.question_view(question_id)
    else:  # SQLite (embedded mode): three queries are cheap in process
        status = store.status(question_id)
        result = store.get_result(question_id) if status is not None and status.terminal else None
        attempts = store.get_attempts(question_id) if status is not None else []
    if status is None:
        return None
    if result is not None and result.status is not Status.FAILED:
        cache.put(result, ttl_s)
    return QuestionView(status, result, attempts)
