"""The cache seam: terminal results by question id, with a TTL.

A cache never fails a request: backends swallow their own outages, count them in
``stats``, and answer ``None`` (a miss) so the caller falls through to the store.
"""

from __future__ import annotations

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

    def close(self) -> None: ...
