"""Token F1 between answer and reference: the pure-Python scorer of the light install.

Normalisation follows the SQuAD evaluation script: lower-case, drop punctuation and the
English articles, split on whitespace. Tokens are matched as multisets. One deviation:
when either side has no tokens left the score is 0.0 (SQuAD gives 1.0 when both are
empty), so an empty answer never passes the quality gate.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from qaflow.scoring import check_pairs

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> list[str]:
    """SQuAD-style tokens of ``text``."""
    text = text.lower().translate(_PUNCTUATION)
    return _ARTICLES.sub(" ", text).split()


def token_f1(candidate: str, reference: str) -> float:
    cand, ref = normalize(candidate), normalize(reference)
    if not cand or not ref:
        return 0.0
    common = sum((Counter(cand) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(cand), common / len(ref)
    return 2 * precision * recall / (precision + recall)


class LexicalScorer:
    name = "lexical"

    @property
    def identity(self) -> dict[str, str]:
        return {"name": self.name, "metric": "token-f1", "version": "1"}

    def start(self) -> None:
        pass

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> list[float]:
        check_pairs(candidates, references)
        return [token_f1(c, r) for c, r in zip(candidates, references, strict=True)]

    def close(self) -> None:
        pass
