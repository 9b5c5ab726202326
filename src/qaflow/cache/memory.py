"""``memory://`` (an in-process dict with expiry) and ``none://`` (no cache)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from qaflow.cache.base import CacheStats
from qaflow.core.messages import ResultMessage


class MemoryCache:
    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self.stats = CacheStats()
        self._items: dict[str, tuple[float, ResultMessage]] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        pass

    def get(self, question_id: str) -> ResultMessage | None:
        with self._lock:
            item = self._items.get(question_id)
            if item is None or item[0] < time.monotonic():
                self._items.pop(question_id, None)
                self.stats.misses += 1
                return None
            self.stats.hits += 1
            return item[1]

    def put(self, result: ResultMessage, ttl_s: int) -> None:
        with self._lock:
            self._items[result.question_id] = (time.monotonic() + ttl_s, result)
            self.stats.writes += 1

    def get_many(self, question_ids: Sequence[str]) -> dict[str, ResultMessage]:
        return {qid: hit for qid in question_ids if (hit := self.get(qid)) is not None}

    def put_many(self, results: Sequence[ResultMessage], ttl_s: int) -> None:
        for result in results:
            self.put(result, ttl_s)

    def close(self) -> None:
        pass


class NoCache:
    def __init__(self, url: str = "none://") -> None:
        self.url = url
        self.stats = CacheStats()

    def start(self) -> None:
        pass

    def get(self, question_id: str) -> ResultMessage | None:
        self.stats.misses += 1
        return None

    def put(self, result: ResultMessage, ttl_s: int) -> None:
        pass

    def get_many(self, question_ids: Sequence[str]) -> dict[str, ResultMessage]:
        self.stats.misses += len(question_ids)
        return {}

    def put_many(self, results: Sequence[ResultMessage], ttl_s: int) -> None:
        pass

    def close(self) -> None:
        pass
