"""The scorer of one worker process: loaded once, lazily (first request, /readyz or the
gunicorn post_worker_init hook), and used by one thread at a time.

Scoring holds a lock: a torch model already uses every core it is given, so threads add
nothing but contention; they keep /healthz, /readyz and /metrics answering during a batch.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

from qaflow.core.errors import ScoringError
from qaflow.core.settings import ScorerServiceSettings
from qaflow.scoring import make_scorer
from qaflow.scoring.base import Scorer
from qaflow.services.scorer.metrics import LOAD_SECONDS, PAIRS, SCORE_SECONDS

logger = logging.getLogger(__name__)


class ModelNotReady(ScoringError):
    retriable = True


class ScorerRuntime:
    def __init__(
        self, settings: ScorerServiceSettings, factory: Callable[[ScorerServiceSettings], Scorer] = make_scorer
    ) -> None:
        self.settings = settings
        self._factory = factory
        self._scorer: Scorer | None = None
        self._error: str | None = None
        self._load_lock = threading.Lock()
        self._score_lock = threading.Lock()
        self._loader: threading.Thread | None = None

    @property
    def loaded(self) -> bool:
        return self._scorer is not None

    def scorer(self) -> Scorer:
        """The started scorer, loading it now if needed (blocks while another thread loads it)."""
        if self._scorer is None:
            with self._load_lock:
                if self._scorer is None:
                    self._scorer = self._load()
        return self._scorer

    def _load(self) -> Scorer:
        began = time.perf_counter()
        scorer = self._factory(self.settings)
        try:
            scorer.start()
        except Exception as exc:
            self._error = f"{type(exc).__name__}: {exc}"
            logger.error("could not load the %s scorer: %s", self.settings.scorer, exc)
            msg = f"model not loaded: {exc}"
            raise ModelNotReady(msg) from exc
        elapsed = time.perf_counter() - began
        LOAD_SECONDS.observe(elapsed)
        self._error = None
        logger.info("%s scorer ready in %.1fs: %s", self.settings.scorer, elapsed, scorer.identity)
        return scorer

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> tuple[list[float], dict[str, str]]:
        scorer = self.scorer()
        with self._score_lock:
            began = time.perf_counter()
            scores = scorer.score(candidates, references)
            SCORE_SECONDS.observe(time.perf_counter() - began)
        PAIRS.inc(len(scores))
        return scores, scorer.identity

    # --- Runtime (see qaflow.services.web.app) ---

    def warm_up(self) -> None:
        self.scorer()

    def ready(self) -> dict[str, str]:
        """``ok`` once loaded; otherwise start loading in the background and say so."""
        if self._scorer is not None:
            return {"model": "ok"}
        if self._loader is None or not self._loader.is_alive():
            self._loader = threading.Thread(target=self._load_quietly, name="model-load", daemon=True)
            self._loader.start()
        return {"model": f"not loaded: {self._error}" if self._error else "loading"}

    def _load_quietly(self) -> None:
        with contextlib.suppress(ScoringError):  # logged in _load; /readyz reports it
            self.scorer()

    def close(self) -> None:
        with self._load_lock:
            scorer, self._scorer = self._scorer, None
        if scorer is not None:
            scorer.close()
