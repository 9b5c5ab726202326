"""`qaflow run` over Kafka steps each stage on a thread of its own: one stage's wait is not the others'."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from qaflow.core.settings import EmbeddedSettings, load
from qaflow.pipeline.embedded import EmbeddedPipeline
from qaflow.scoring.lexical import LexicalScorer
from tests.integration.test_embedded_run import SAMPLE

pytestmark = pytest.mark.integration

HOLD_S = 30.0


class CountingScorer(LexicalScorer):
    """Counts its calls. Its second call waits (up to ``HOLD_S``) for the store's first write to
    begin, so scoring is still left to do while that write is held, however the threads run."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.called = threading.Condition()
        self.write_started = threading.Event()

    def score(self, candidates: list[str], references: list[str]) -> Any:
        with self.called:
            self.calls += 1
            n = self.calls
            self.called.notify_all()
        if n == 2:
            self.write_started.wait(HOLD_S)
        return super().score(candidates, references)

    def called_again(self, timeout_s: float) -> bool:
        """Whether ``score`` is called again within ``timeout_s`` (s)."""
        with self.called:
            before = self.calls
            return self.called.wait_for(lambda: self.calls > before, timeout_s)


class HeldStore:
    """The real store, whose first write waits (up to ``HOLD_S``) for the scorer to be called again."""

    def __init__(self, inner: Any, scorer: CountingScorer) -> None:
        self.inner, self.scorer = inner, scorer
        self.first_write_saw_scoring: bool | None = None

    def write(self, batch: Any) -> None:
        if self.first_write_saw_scoring is None:
            self.first_write_saw_scoring = False
            self.scorer.write_started.set()
            self.first_write_saw_scoring = self.scorer.called_again(HOLD_S)
        self.inner.write(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_the_score_stage_keeps_scoring_while_the_storage_stage_waits_on_its_store(
    tmp_path: Path, kafka_bootstrap: str, unique_name: str
) -> None:
    """With the stages stepped in turn on one thread (before), the held write held every stage:
    the scorer was not called during the ``HOLD_S`` wait, and this failed. (Without the scorer's
    handshake it could also fail on threads, when all 60 answers were scored before the first
    write: seen once in CI under load.)"""
    from qaflow.datasets import open_dataset

    settings = load(EmbeddedSettings, {}, bus_url=f"kafka://{kafka_bootstrap}", topic_prefix=f"{unique_name}.",
                    store_url=f"sqlite:///{tmp_path / 'q.db'}", scorer_batch_size=1, threshold=0.0)
    scorer = CountingScorer()
    pipeline = EmbeddedPipeline(settings, scorer=scorer)
    store = pipeline.store = HeldStore(pipeline.store, scorer)
    try:
        summary = pipeline.run(open_dataset(str(SAMPLE), limit=60), total=60)
    finally:
        pipeline.close()
    assert store.first_write_saw_scoring is True
    assert summary.questions == 60 and summary.validated + summary.exhausted + summary.failed == 60
