"""The one batched interface every scorer implements.

``score(candidates, references)`` returns one float per pair (BERTScore F1 for
``bertscore``). ``identity`` describes the scorer (name, model, layers, library versions)
and is stored with every score, as bert-score recommends, so scores from different
models are never compared by mistake.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Scorer(Protocol):
    name: str

    @property
    def identity(self) -> dict[str, str]: ...

    def start(self) -> None: ...

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> list[float]: ...

    def close(self) -> None: ...
