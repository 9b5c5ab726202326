"""Submitting a chunk of questions at once (``qaflow run``): the decisions of
:meth:`Submitter.submit` for each question, with the round trips of the chunk shared.

Per question, ``Submitter.submit`` reads the cache and the store, records the question and
flushes the producer: over real backends, ``qaflow run`` spent most of its submission time
waiting on those round trips (issue 13, item 2). Here the cache is read once for the chunk
(``Cache.get_many``, one ``MGET`` on Redis) and refilled once (``Cache.put_many``), the store
read once (``Store.get_results``), the new questions recorded in one statement
(``Store.record_questions``) and the producer flushed once, after every new question was sent.
If the flush fails, every question of the chunk is released (so a later submission enqueues
it again) and the error is raised, as ``Submitter.submit`` does for one question.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from qaflow.core import topics
from qaflow.core.messages import QuestionMessage, ResultMessage, Status
from qaflow.pipeline.submit import Source, Submission, Submitter

logger = logging.getLogger(__name__)


def submit_many(submitter: Submitter, questions: Sequence[QuestionMessage]) -> list[Submission]:
    """One :class:`Submission` per question, in order (a repeat within the chunk is ``IN_FLIGHT``).

    Raises what the producer's ``flush`` raises (a :class:`~qaflow.core.errors.DeliveryError`),
    after releasing the questions it recorded.
    """
    store, cache = submitter.store, submitter.cache
    hits = cache.get_many([q.question_id for q in questions])
    stored = store.get_results([q.question_id for q in questions if q.question_id not in hits])
    answered = hits.keys() | stored.keys()
    recorded = store.record_questions([q for q in questions if q.question_id not in answered])
    out: list[Submission] = []
    sent: list[str] = []
    refill: list[ResultMessage] = []  # answered in the store, not in the cache: cached again in one call
    try:
        for q in questions:
            qid = q.question_id
            if qid in hits:
                out.append(Submission(qid, Source.CACHE, hits[qid].status, hits[qid]))
                continue
            if qid in stored:
                result = stored[qid]
                if result.status is not Status.FAILED:
                    refill.append(result)
                out.append(Submission(qid, Source.STORE, result.status, result))
                continue
            if qid not in recorded or qid in sent:
                out.append(Submission(qid, Source.IN_FLIGHT, store.status(qid) or Status.QUEUED))
                continue
            sent.append(qid)
            submitter.producer.send(topics.QUESTIONS, qid, q.encode())
            out.append(Submission(qid, Source.QUEUED, Status.QUEUED))
        if sent:
            submitter.producer.flush()
    except Exception:
        for qid in sorted(recorded):  # else they would wait STALE_QUEUED_S before a re-enqueue
            store.release_question(qid)
        raise
    cache.put_many(refill, submitter.ttl_s)
    logger.debug("enqueued %d of %d questions", len(sent), len(questions))
    return out
