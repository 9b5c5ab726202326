"""A scorer that loads its model on first use, so a run answered wholly from the store
never pays for loading one."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from qaflow.scoring.base import Scorer


class LazyScorer:
    def __init__(self, inner: Scorer, described_as: dict[str, str]) -> None:
        self.inner = inner
        self.name = inner.name
        self.described_as = described_as  # what to report before the model is loaded
        self.started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        pass  # deferred to the first score()

    def _ensure(self) -> None:
        with self._lock:
            if not self.started:
                self.inner.start()
                self.started = True

    @property
    def identity(self) -> dict[str, str]:
        return self.inner.identity if self.started else self.described_as

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> list[float]:
        self._ensure()
        return self.inner.score(candidates, references)

    def close(self) -> None:
        if self.started:
            self.inner.close()
