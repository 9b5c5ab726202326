"""The api's submitter: the same decisions as :class:`qaflow.pipeline.submit.Submitter`, with
the store's part of a POST in one statement on PostgreSQL (:meth:`PostgresStore.admit`),
through the :meth:`Submitter.admit` hook that ``Submitter.submit`` calls first.

Per new question: one Redis GET, one PostgreSQL statement (result lookup, insert, state), one
Kafka send awaited for its acknowledgement. Before, the store took two statements (three for
a repeat still in flight). Other stores (SQLite, embedded mode) use the plain Submitter.

A batch (``POST /v1/questions:batch``, :meth:`ApiSubmitter.submit_batch`) takes the steps of
:func:`qaflow.pipeline.submit_many.submit_many`: one store read and one insert for all its
questions, then one wait for the acknowledgement of the records this request sent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from qaflow.bus.base import Producer
from qaflow.core import topics
from qaflow.core.messages import QuestionMessage, Status
from qaflow.pipeline.submit import Source, Submission, Submitter
from qaflow.pipeline.submit_many import submit_many
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

    def submit_batch(self, questions: Sequence[QuestionMessage]) -> list[Submission]:
        """One :class:`Submission` per question, in order (:func:`submit_many`); raises the producer's
        :class:`~qaflow.core.errors.DeliveryError` (503) after releasing what it recorded.

        The batch's single wait is for this request's own records (``wait_delivered``, as a single
        POST), not a ``flush`` of every request's records on the shared producer."""
        return submit_many(Submitter(self.store, self.cache, _OwnRecords(self.producer), self.ttl_s), questions)


class _OwnRecords:
    """A producer whose ``flush`` waits only for this thread's records (``wait_delivered`` where the
    inner producer has it: :class:`~qaflow.services.api.enqueue.BoundedProducer` over Kafka)."""

    def __init__(self, inner: Producer) -> None:
        self.inner = inner

    def start(self) -> None:
        self.inner.start()

    def send(self, topic: str, key: str | None, value: bytes) -> None:
        self.inner.send(topic, key, value)

    def flush(self, timeout_s: float | None = None) -> None:
        getattr(self.inner, "wait_delivered", self.inner.flush)(timeout_s)

    def close(self) -> None:
        self.inner.close()
