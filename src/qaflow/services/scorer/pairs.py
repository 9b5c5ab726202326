"""Checking a scoring request: pure Python, every problem named by its place (``pairs[3].candidate``).

Texts longer than ``scorer_max_chars`` are truncated, not refused: the in-process bertscore
scorer truncates the same way, so a score does not depend on where it was computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class InvalidPairs(ValueError):
    def __init__(self, detail: str, field: str, *, too_many: bool = False) -> None:
        super().__init__(f"{field}: {detail}")
        self.detail = detail
        self.field = field
        self.too_many = too_many  # answered 413, not 422


@dataclass(frozen=True, slots=True)
class Pairs:
    candidates: list[str]
    references: list[str]
    truncated: int  # texts cut to max_chars


def parse_pairs(body: Any, max_batch: int, max_chars: int) -> Pairs:
    if not isinstance(body, dict):
        raise InvalidPairs("body must be a JSON object with a 'pairs' array", "body")
    unknown = sorted(set(body) - {"pairs"})
    if unknown:
        raise InvalidPairs("unknown field", unknown[0])
    pairs = body.get("pairs")
    if not isinstance(pairs, list):
        raise InvalidPairs("must be an array of {candidate, reference} objects", "pairs")
    if len(pairs) > max_batch:
        msg = f"at most {max_batch} pairs per request, got {len(pairs)}"
        raise InvalidPairs(msg, "pairs", too_many=True)
    candidates, references, truncated = [], [], 0
    for i, pair in enumerate(pairs):
        if not isinstance(pair, dict):
            raise InvalidPairs("must be an object with 'candidate' and 'reference'", f"pairs[{i}]")
        extra = sorted(set(pair) - {"candidate", "reference"})
        if extra:
            raise InvalidPairs("unknown field", f"pairs[{i}].{extra[0]}")
        texts = []
        for name in ("candidate", "reference"):
            value = pair.get(name)
            if not isinstance(value, str):
                got = "missing" if name not in pair else type(value).__name__
                msg = f"must be a string ({got})"
                raise InvalidPairs(msg, f"pairs[{i}].{name}")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidPairs("is not valid Unicode (lone surrogate)", f"pairs[{i}].{name}") from exc
            if len(value) > max_chars:
                value, truncated = value[:max_chars], truncated + 1
            texts.append(value)
        candidates.append(texts[0])
        references.append(texts[1])
    return Pairs(candidates, references, truncated)


def body_limit(max_batch: int, max_chars: int) -> int:
    """Largest request body: every text at the limit, each character escaped as \\uXXXX."""
    return max(1 << 20, max_batch * 2 * (max_chars * 6 + 64) + 1024)
