"""The row policy every reader shares: what makes a usable question, and the tally.

Bad rows are data, not crashes: each is skipped with a :class:`Skip` reason and counted in a
:class:`LoadReport`. Text a backend cannot carry (NUL and other control characters, lone
surrogates) is repaired by the core text policy (:func:`repair_row`) and the row counted as
repaired; a row over the message limits, or over the csv module's field limit, is skipped
as "too long" (never truncated). Only a malformed *file* (bytes that are not UTF-8, broken
CSV quoting, a line that is not JSON) stops a load, with a :class:`~qaflow.core.errors.DatasetError`.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from qaflow.core.messages import MAX_ANSWER, MAX_CONTENT, MAX_TITLE
from qaflow.core.question import CATEGORIES, Question
from qaflow.core.text import repair

logger = logging.getLogger(__name__)


class Skip(StrEnum):
    """Why a row did not become a question."""

    SHORT_ROW = "too few columns"
    EXTRA_COLUMNS = "too many columns"
    BAD_CATEGORY = "bad class index"
    BLANK_TITLE = "blank title"
    BLANK_ANSWER = "blank answer"
    TOO_LONG = "too long"
    NOT_OBJECT = "not a JSON object"
    MISSING_FIELD = "missing field"
    BAD_FIELD = "field is not text"


class RawQuestion(NamedTuple):
    """A row as a reader decoded it: fields unescaped, category already on the 1-10 scale."""

    category: int
    title: str
    content: str
    answer: str


def parse_category(raw: object, *, base: int) -> int | None:
    """``raw`` on a scale starting at ``base`` (1 for Zhang, 0 for Hugging Face) to 1-10."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if not text.isascii() or not text.isdigit():
            return None
        raw = int(text)
    if not isinstance(raw, int):
        return None
    category = raw - base + 1
    return category if category in CATEGORIES else None


def repair_row(raw: RawQuestion) -> tuple[RawQuestion, tuple[str, ...]]:
    """The row with the text policy applied to its texts, and what changed ("title: ...")."""
    fixed = {name: repair(getattr(raw, name)) for name in ("title", "content", "answer")}
    changes = tuple(f"{name}: {change}" for name, r in fixed.items() for change in r.changes)
    if not changes:
        return raw, ()
    return raw._replace(title=fixed["title"].text, content=fixed["content"].text, answer=fixed["answer"].text), changes


def to_question(raw: RawQuestion, source: str) -> Question | Skip:
    """Apply the row policy: trimmed text, a title and an answer, within the message limits."""
    title, content, answer = raw.title.strip(), raw.content.strip(), raw.answer.strip()
    if not title:
        return Skip.BLANK_TITLE
    if not answer:
        return Skip.BLANK_ANSWER
    if len(title) > MAX_TITLE or len(content) > MAX_CONTENT or len(answer) > MAX_ANSWER:
        return Skip.TOO_LONG
    return Question(title, content, answer, category=raw.category, source=source)


@dataclass
class LoadReport:
    """What a pass over a data set read, yielded and skipped. Filled in while iterating."""

    path: str
    fmt: str
    rows: int = 0
    questions: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    categories: Counter[int] = field(default_factory=Counter)
    complete: bool = False  # True once the reader reached the end of the file
    repaired: int = 0  # rows whose text the text policy changed (see qaflow.core.text)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def count_question(self, question: Question) -> None:
        self.questions += 1
        if question.category is not None:
            self.categories[question.category] += 1

    def count_repair(self, changes: tuple[str, ...], source: str) -> None:
        self.repaired += 1
        logger.info("repaired %s: %s", source, "; ".join(changes))

    def count_skip(self, reason: Skip, source: str) -> None:
        self.skipped[reason.value] += 1
        logger.debug("skipped %s: %s", source, reason.value)

    def summary(self) -> str:
        reasons = ", ".join(f"{n} {reason}" for reason, n in self.skipped.most_common())
        return (
            f"{self.path} ({self.fmt}): {self.rows} rows, {self.questions} questions, "
            f"{self.skipped_total} skipped" + (f" ({reasons})" if reasons else "")
            + (f", {self.repaired} repaired" if self.repaired else "")
        )
