"""The storage stage reads back what it cached in one query per batch (issue 13, item 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qaflow.cache.memory import MemoryCache
from qaflow.core.ids import question_id
from qaflow.core.messages import Status
from qaflow.pipeline.storage import StorageStage
from qaflow.store.base import WriteBatch
from qaflow.store.sqlite import SqliteStore
from tests.contract.test_store_contract import result


class CountingStore(SqliteStore):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.reads: list[str] = []

    def get_result(self, question_id: str) -> Any:
        self.reads.append("one")
        return super().get_result(question_id)

    def get_results(self, question_ids: Any) -> Any:
        self.reads.append("many")
        return super().get_results(question_ids)


def test_a_batch_is_cached_from_one_read_of_what_the_store_holds(tmp_path: Path) -> None:
    store = CountingStore(f"sqlite:///{tmp_path / 'q.db'}")
    store.start()
    cache = MemoryCache()
    stage = StorageStage(store, cache, ttl_s=60)
    stage.handle_batch([result("better", Status.VALIDATED, 0.95)])
    store.reads.clear()
    batch = [result(f"q{i}", Status.VALIDATED, 0.9) for i in range(100)]
    batch += [result("better", Status.EXHAUSTED, 0.5), result("failed", Status.FAILED)]
    stage.handle_batch(batch)
    assert store.reads == ["many"]
    cached = cache.get(question_id("better"))
    assert cached is not None and cached.score == 0.95  # the stored row, not the worse duplicate
    assert cache.get(question_id("q99")) is not None
    assert cache.get(question_id("failed")) is None
    store.close()


def test_a_batch_without_cacheable_results_reads_nothing(tmp_path: Path) -> None:
    store = CountingStore(f"sqlite:///{tmp_path / 'q.db'}")
    store.start()
    StorageStage(store, MemoryCache(), ttl_s=60).handle_batch([result("failed", Status.FAILED)])
    assert store.reads == []
    assert isinstance(store.get_results([]), dict)
    store.write(WriteBatch())
    store.close()
