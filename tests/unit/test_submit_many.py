"""``submit_many``: Submitter.submit's decisions for a chunk, with one store read and one flush."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qaflow.bus.memory import MemoryBus
from qaflow.cache.memory import MemoryCache
from qaflow.core import topics
from qaflow.core.errors import DeliveryError
from qaflow.core.messages import QuestionMessage, Status
from qaflow.pipeline.submit import Source, Submitter
from qaflow.pipeline.submit_many import submit_many
from qaflow.store.base import WriteBatch
from qaflow.store.sqlite import SqliteStore
from tests.contract.test_store_contract import result
from tests.unit.doubles import CountingProducer


def q(title: str) -> QuestionMessage:
    return QuestionMessage.new(title, "", "A reference answer.")


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = SqliteStore(f"sqlite:///{tmp_path / 'q.db'}")
    s.start()
    yield s
    s.close()


def test_a_chunk_gets_submits_decisions_with_one_flush(store: SqliteStore) -> None:
    MemoryBus.reset("submit-many")
    bus = MemoryBus("memory://submit-many")
    bus.start()
    producer = CountingProducer(bus.producer())
    cache = MemoryCache()
    store.write(WriteBatch(results=[result("stored", Status.VALIDATED, 0.9), result("failed", Status.FAILED)]))
    cache.put(result("cached", Status.EXHAUSTED, 0.5), 60)
    store.record_question(q("in flight"))
    chunk = [q("cached"), q("stored"), q("failed"), q("in flight"), q("new 1"), q("new 2"), q("new 1")]
    subs = submit_many(Submitter(store, cache, producer, ttl_s=60), chunk)
    assert [s.source for s in subs] == [Source.CACHE, Source.STORE, Source.STORE, Source.IN_FLIGHT,
                                        Source.QUEUED, Source.QUEUED, Source.IN_FLIGHT]
    assert [s.question_id for s in subs] == [m.question_id for m in chunk]
    assert (producer.sends, producer.flushes) == (2, 1)
    assert sum(bus.end_offsets(topics.QUESTIONS)) == 2
    assert cache.get(chunk[1].question_id) is not None  # refilled from the store
    assert cache.get(chunk[2].question_id) is None  # a failure is not cached
    assert subs[2].status is Status.FAILED


def test_a_failed_flush_releases_the_chunk_and_raises(store: SqliteStore) -> None:
    MemoryBus.reset("submit-many-fail")
    bus = MemoryBus("memory://submit-many-fail")
    bus.start()
    submitter = Submitter(store, MemoryCache(), CountingProducer(bus.producer(), fail_flushes=1), ttl_s=60)
    chunk = [q("a"), q("b")]
    with pytest.raises(DeliveryError):
        submit_many(submitter, chunk)
    again = Submitter(store, MemoryCache(), CountingProducer(bus.producer()), ttl_s=60)
    assert [s.source for s in submit_many(again, chunk)] == [Source.QUEUED, Source.QUEUED]
