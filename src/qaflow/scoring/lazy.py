"""A scorer whose model loads in the background, so loading overlaps the first LLM calls.

``preload()`` starts loading on a daemon thread; the first ``score()`` waits for it (or
loads there, if nobody preloaded). Loading BERTScore is mostly Python imports (torch,
transformers, pandas, matplotlib through bert-score: about 15 s on a 2-core machine,
issue 13), which would otherwise all sit between the first LLM answer and the first score.
A failed background load is retried, and so reported, by the first ``score()``. bert-score
is imported without the pandas and matplotlib it never scores with
(:mod:`qaflow.scoring.lightimport`).

Logs (INFO) the first scoring call and when its scores are out, so the time from the first
LLM answer to the first score can be read from a run's log (bench/scoring.py does), with the
process's CPU seconds so far: on a shared machine the wall-clock figures swing with the load,
the CPU seconds much less.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from qaflow.scoring.base import Scorer

logger = logging.getLogger(__name__)


class LazyScorer:
    def __init__(self, inner: Scorer, described_as: dict[str, str]) -> None:
        self.inner = inner
        self.name = inner.name
        self.described_as = described_as  # what to report before the model is loaded
        self.started = False
        self._lock = threading.Lock()
        self._loader: threading.Thread | None = None
        self._closed = False
        self._scored_once = False

    def start(self) -> None:
        pass  # deferred to preload() or the first score()

    def preload(self) -> None:
        """Start loading the model on a background thread (once); returns at once."""
        if self._loader is None and not self.started:
            self._loader = threading.Thread(target=self._load_in_background, name="scorer-preload", daemon=True)
            self._loader.start()

    def _load_in_background(self) -> None:
        began = time.perf_counter()
        try:
            self._ensure()
        except Exception as exc:  # score() loads again and raises it there
            logger.warning("background load of the %s scorer failed, retried on first use: %s", self.name, exc)
            return
        logger.info("%s scorer loaded in the background in %.1fs (process CPU so far %.2fs)", self.name,
                    time.perf_counter() - began, time.process_time())
        with self._lock:
            if self._closed:  # close() ran while we loaded
                self.inner.close()

    def _ensure(self) -> None:
        with self._lock:
            if not self.started:
                if self.inner.name == "bertscore":  # without pandas and matplotlib (scoring/lightimport.py)
                    from qaflow.scoring.lightimport import import_bert_score

                    import_bert_score()
                self.inner.start()
                self.started = True

    @property
    def identity(self) -> dict[str, str]:
        return self.inner.identity if self.started else self.described_as

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> list[float]:
        if self._scored_once:
            return self.inner.score(candidates, references)
        began = time.perf_counter()
        logger.info("first scoring call: %d pairs, model %s", len(candidates), "ready" if self.started else "loading")
        self._ensure()
        waited = time.perf_counter() - began
        scores = self.inner.score(candidates, references)
        self._scored_once = True
        logger.info("first scores out: %d pairs, %.2fs after the first scoring call (%.2fs waiting for the model); "
                    "process CPU so far %.2fs", len(scores), time.perf_counter() - began, waited, time.process_time())
        return scores

    def close(self) -> None:
        if not self._lock.acquire(blocking=False):  # still loading: the loader closes it
            self._closed = True
            return
        try:
            self._closed = True
            if self.started:
                self.inner.close()
        finally:
            self._lock.release()
