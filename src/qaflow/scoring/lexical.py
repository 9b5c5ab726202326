"""Token F1 between answer and reference: the pure-Python scorer of the light install.

Normalisation follows the SQuAD evaluation script: lower-case, drop punctuation and the
English articles, split on whitespace. Tokens are matched as multisets. Two deviations:

- when either side has no tokens left the score is 0.0 (SQuAD gives 1.0 when both are
  empty), so an empty answer never passes the quality gate;
- scripts written without spaces between words (Chinese, Japanese kana and kanji, Thai,
  Lao, Khmer, Myanmar) are split into one token per character, a character's combining
  marks kept with it (a Thai vowel or tone mark stays on its consonant). This is the
  "mixed segmentation" of the CMRC 2018 evaluation script (Cui et al., 2019), used for
  Chinese reading-comprehension F1; it needs no dictionary and treats every such script
  the same. Unicode punctuation (general category P, e.g. U+FF0C and U+3002) is dropped like
  ASCII punctuation. Runs of other letters and digits stay whole words, so English scores
  are unchanged. It is a character overlap, not word segmentation: a Thai or Chinese
  answer that shares many characters with the reference scores high even if its words
  differ. The identity says so: ``"tokens": "words+chars"``.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from qaflow.scoring import check_pairs

if TYPE_CHECKING:
    from qaflow.core.settings import ScorerSettings

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


# Unicode character-name prefixes of the scripts written without spaces between words.
NO_SPACE_SCRIPTS = ("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH", "HIRAGANA", "KATAKANA",
                    "THAI", "LAO", "KHMER", "MYANMAR")


@lru_cache(maxsize=8192)
def _no_space(char: str) -> bool:
    return unicodedata.name(char, "").startswith(NO_SPACE_SCRIPTS)


def _split(text: str) -> list[str]:
    """Whitespace-separated words, with each character of a no-space script its own token."""
    tokens: list[str] = []
    word = ""
    for char in text:
        category = unicodedata.category(char)
        if category.startswith("M") and tokens and not word:
            tokens[-1] += char  # a combining mark stays with its base character
        elif char.isspace() or category.startswith("P"):
            if word:
                tokens.append(word)
                word = ""
        elif _no_space(char):
            if word:
                tokens.append(word)
                word = ""
            tokens.append(char)
        else:
            word += char
    if word:
        tokens.append(word)
    return tokens


def normalize(text: str) -> list[str]:
    """SQuAD-style tokens of ``text``; one token per character in scripts without spaces."""
    text = text.lower().translate(_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    if text.isascii():
        return text.split()
    return _split(text)


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

    def __init__(self, settings: ScorerSettings | None = None) -> None:
        """Needs no settings; takes them like every scorer (see :func:`qaflow.scoring.make_scorer`)."""

    @property
    def identity(self) -> dict[str, str]:
        # tokens "words+chars": whitespace words, one token per character in no-space scripts
        return {"name": self.name, "metric": "token-f1", "version": "2", "tokens": "words+chars"}

    @property
    def described(self) -> dict[str, str]:
        """Known without starting: the identity itself."""
        return self.identity

    def start(self) -> None:
        pass

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> list[float]:
        check_pairs(candidates, references)
        return [token_f1(c, r) for c, r in zip(candidates, references, strict=True)]

    def close(self) -> None:
        pass
