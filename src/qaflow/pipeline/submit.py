"""Submitting a question: answered already (cache, then store) or enqueued once."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from qaflow.bus.base import Producer
from qaflow.cache.base import Cache
from qaflow.core import topics
from qaflow.core.messages import QuestionMessage, ResultMessage, Status
from qaflow.store.base import Store

logger = logging.getLogger(__name__)


class Source(StrEnum):
    CACHE = "cache"
    STORE = "store"
    QUEUED = "queued"  # enqueued now
    IN_FLIGHT = "in-flight"  # enqueued earlier, no result yet


@dataclass(frozen=True, slots=True)
class Submission:
    question_id: str
    source: Source
    status: Status
    result: ResultMessage | None = None


class Submitter:
    def __init__(self, store: Store, cache: Cache, producer: Producer, ttl_s: int) -> None:
        self.store = store
        self.cache = cache
        self.producer = producer
        self.ttl_s = ttl_s

    def lookup(self, question_id: str) -> tuple[ResultMessage | None, Source | None]:
        hit = self.cache.get(question_id)
        if hit is not None:
            return hit, Source.CACHE
        stored = self.store.get_result(question_id)
        if stored is not None:
            if stored.status is not Status.FAILED:
                self.cache.put(stored, self.ttl_s)  # refill
            return stored, Source.STORE
        return None, None

    def admit(self, question: QuestionMessage) -> Submission | None:
        """A subclass's faster way to the same Submission (the api's: one PostgreSQL statement);
        None: take the steps below."""
        return None

    def submit(self, question: QuestionMessage) -> Submission:
        qid = question.question_id
        admitted = self.admit(question)
        if admitted is not None:
            return admitted
        result, source = self.lookup(qid)
        if result is not None and source is not None:
            return Submission(qid, source, result.status, result)
        if not self.store.record_question(question):
            return Submission(qid, Source.IN_FLIGHT, self.store.status(qid) or Status.QUEUED)
        try:
            self.producer.send(topics.QUESTIONS, qid, question.encode())
            self.producer.flush()
        except Exception:
            self.store.release_question(qid)  # else it would wait STALE_QUEUED_S before a re-enqueue
            raise
        logger.debug("enqueued question_id=%s", qid)
        return Submission(qid, Source.QUEUED, Status.QUEUED)
