"""Deterministic synthetic questions for load tests, from templates and a small vocabulary.

The same ``seed`` always gives the same questions. Titles are unique without remembering
them: within a category, the k-th title is a fixed permutation (``a*k + b mod N``) of the
(template, subject, context) grid, so no two k share a cell; once the N cells of a category
are used up, a round number is appended. Subjects differ across categories, so titles do too.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from qaflow.core.question import CATEGORIES, Question
from qaflow.datasets.synth_vocab import CONTENTS, TITLES, TOPICS, Topic
from qaflow.datasets.zhang import write_zhang, write_zhang_csv

logger = logging.getLogger(__name__)

__all__ = ["synth_questions", "write_zhang", "write_zhang_csv"]

EMPTY_CONTENT_SHARE = 0.25


@dataclass(frozen=True, slots=True)
class _Cell:
    subject: str
    explanation: str
    context: str
    title: str


class _TitleGrid:
    """Walks one category's (template, subject, context) grid in a seeded order."""

    def __init__(self, topic: Topic, rng: random.Random) -> None:
        self.topic = topic
        self.size = len(TITLES) * len(topic.subjects) * len(topic.contexts)
        self.step = rng.randrange(1, self.size)
        while math.gcd(self.step, self.size) != 1:
            self.step = rng.randrange(1, self.size)
        self.offset = rng.randrange(self.size)
        self.used = 0

    def next(self) -> _Cell:
        rounds, k = divmod(self.used, self.size)
        self.used += 1
        index = (self.step * k + self.offset) % self.size
        index, template = divmod(index, len(TITLES))
        context, subject = divmod(index, len(self.topic.subjects))
        phrase, explanation = self.topic.subjects[subject]
        where = self.topic.contexts[context]
        title = TITLES[template].format(s=phrase, S=phrase[0].upper() + phrase[1:], c=where)
        if rounds:
            title += f" [{rounds + 1}]"
        return _Cell(phrase, explanation, where, title)


def _content(rng: random.Random, cell: _Cell) -> str:
    if rng.random() < EMPTY_CONTENT_SHARE:
        return ""
    return rng.choice(CONTENTS).format(s=cell.subject, c=cell.context)


def _answer(rng: random.Random, topic: Topic, cell: _Cell) -> str:
    follow_ups = rng.sample(topic.follow_ups, k=rng.randint(1, 2))
    if rng.random() < 0.1:  # some multi-line answers, as real ones have
        return cell.explanation + "\n\n" + "\n".join(follow_ups)
    return " ".join([cell.explanation, *follow_ups])


def synth_questions(n: int, seed: int = 0) -> Iterator[Question]:
    """``n`` plausible questions spread over the 10 categories, the same for the same seed."""
    if n < 0:
        msg = f"n must be >= 0, got {n}"
        raise ValueError(msg)
    rng = random.Random(seed)  # test data, not security
    grids = {category: _TitleGrid(TOPICS[category], rng) for category in CATEGORIES}
    categories = list(CATEGORIES)
    for number in range(1, n + 1):
        category = rng.choice(categories)
        cell = grids[category].next()
        yield Question(
            title=cell.title,
            content=_content(rng, cell),
            reference_answer=_answer(rng, TOPICS[category], cell),
            category=category,
            source=f"synth:{seed}:{number}",
        )
