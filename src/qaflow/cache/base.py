"""The cache seam: terminal results by question id, with a TTL.

A cache never fails a request: backends swallow their own outages, count them in
``stats``, and answer ``None`` (a miss) so the caller falls through to the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from qaflow.core.messages import ResultMessage

KEY_PREFIX = "qaflow:result:v1:"  # + question_id; value: the ResultMessage JSON


def key(question_id: str, prefix: str = KEY_PREFIX) -> str:
    return prefix + question_id


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    errors: int = 0
    writes: int = 0

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None


class Cache(Protocol):
    url: str
    stats: CacheStats

    def start(self) -> None: ...

    def get(self, question_id: str) -> ResultMessage | None: ...

    def put(self, result: ResultMessage, ttl_s: int) -> None: ...

    def get_many(self, question_ids: Sequence[str]) -> dict[str, ResultMessage]:
        """The cached results among ``question_ids``, by id (misses absent): one round trip on Redis."""
        ...

    def put_many(self, results: Sequence[ResultMessage], ttl_s: int) -> None:
        """:meth:`put` for each result (``ttl_s`` in s): one round trip on Redis."""
        ...

    def close(self) -> None: ...
