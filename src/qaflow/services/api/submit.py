"""The api's submitter: the same decisions as :class:`qaflow.pipeline.submit.Submitter`, with
the store's part of a POST in one statement on PostgreSQL (:meth:`PostgresStore.admit`),
through the :meth:`Submitter.admit` hook that ``Submitter.submit`` calls first.

Per new question: one Redis GET, one PostgreSQL statement (result lookup, insert, state), one
Kafka send awaited for its acknowledgement. Before, the store took two statements (three for
a repeat still in flight). Other stores (SQLite, embedded mode) use the plain Submitter.
"""

from __future__ import annotations

import logging

from qaflow.core import topics
from qaflow.core.messages import QuestionMessage, Status
from qaflow.pipeline.submit import Source, Submission, Submitter
from qaflow.store.postgres import PostgresStore

logger = logging.getLogger(__name__)


class ApiSubmitter(Submitter):
    def admit(self, question: QuestionMessage) -> Submission | None:
        store = self.store
        if not isinstance(store, PostgresStore):
            return None  # Submitter.submit's steps
        qid = question.question_id
        hit = self.cache.get(qid)
        if hit is not None:
            return Submission(qid, Source.CACHE, hit.status, hit)
        stored, recorded, status = store.admit(question)
        if stored is not None:
            if stored.status is not Status.FAILED:
                self.cache.put(stored, self.ttl_s)  # refill
            return Submission(qid, Source.STORE, stored.status, stored)
        if not recorded:
            return Submission(qid, Source.IN_FLIGHT, status)
        # as Submitter.submit: released when the enqueue fails, so a repeat enqueues it at once
        try:
            self.producer.send(topics.QUESTIONS, qid, question.encode())
            getattr(self.producer, "wait_delivered", self.producer.flush)()
        except Exception:
            store.release_question(qid)
            raise
        logger.debug("enqueued question_id=%s", qid)
        return Submission(qid, Source.QUEUED, Status.QUEUED)
