"""The question id: a stable hash of the normalised title and content.

It keys every Kafka message, the cache and the store, so the same question asked twice,
with different case, spacing or Unicode composition, maps to the same id. The text is
first repaired by :func:`qaflow.core.text.clean` (a lone surrogate becomes U+FFFD, control
characters go), so the id of a raw text equals the id of its repaired form and hashing
never raises ``UnicodeEncodeError``.
"""

from __future__ import annotations

import hashlib
import unicodedata

from qaflow.core.text import clean

ID_LENGTH = 32  # hex characters (128 bits)


def normalise(text: str) -> str:
    """Repaired, NFKC, case-folded, whitespace collapsed. Punctuation is kept: it can change meaning."""
    return " ".join(unicodedata.normalize("NFKC", clean(text)).casefold().split())


def question_id(title: str, content: str = "") -> str:
    """Stable id of a question; the separator keeps ("ab", "c") apart from ("a", "bc")."""
    payload = normalise(title) + "\x1f" + normalise(content)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:ID_LENGTH]


def is_question_id(value: str) -> bool:
    return len(value) == ID_LENGTH and all(c in "0123456789abcdef" for c in value)
