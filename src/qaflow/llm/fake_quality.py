"""Answers of varying quality for the fake LLM server: the offline simulator's model over HTTP.

The fake server only sees the prompt. Given a data set, a :class:`ReferenceBook` finds the
question whose title the prompt carries (the built-in templates put it on a ``Question:`` or
``Pregunta:`` line) and answers with :func:`qaflow.llm.offline.simulated_answer` for that
question, its reference answer and a generation number. The server cannot see the generation,
so it counts the answers it has given each question: the n-th answer is generation n. A
question the book does not hold (or a custom prompt template) gets ``None``, and the server
falls back to its echo answer.

Because the quality draw depends only on (question id, generation, seed), the local services
regenerate the same questions as ``qaflow run`` with the offline simulator and the same seed,
as long as each generation reaches the server once (a retried call after a server-side fault
does not count: only answers given are counted).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

from qaflow.core.ids import normalise
from qaflow.core.question import Question
from qaflow.llm.base import LlmRequest
from qaflow.llm.offline import simulated_answer

# The title line of the built-in prompts (qaflow.llm.prompt); the details line, if any, follows.
_TITLE = re.compile(r"^(Question|Pregunta):[ \t]*(?P<title>.*?)\s*(?:\n(?:Details|Detalles):|\Z)",
                    re.MULTILINE | re.DOTALL)


class ReferenceBook:
    """Reference answers by normalised title, and how many answers each question has had.

    Thread-safe: the fake server answers from many threads.
    """

    def __init__(self, questions: Iterable[Question], seed: int = 0) -> None:
        self.seed = seed
        self._by_title: dict[str, Question] = {}
        for q in questions:
            self._by_title.setdefault(normalise(q.title), q)
        self._answers: Counter[str] = Counter()
        self._lock = threading.Lock()

    @classmethod
    def from_dataset(cls, path: str | Path, seed: int = 0, limit: int | None = None) -> ReferenceBook:
        """Read every question of a data set (any format :func:`qaflow.datasets.open_dataset` reads).

        Raises :class:`qaflow.datasets.DatasetError` for a missing or unreadable file.
        """
        from qaflow.datasets import open_dataset

        return cls(open_dataset(path, limit=limit), seed)

    def __len__(self) -> int:
        return len(self._by_title)

    def lookup(self, prompt: str) -> tuple[Question, str] | None:
        """The question whose title ``prompt`` carries and the prompt's language, or ``None``."""
        found = _TITLE.search(prompt)
        question = self._by_title.get(normalise(found.group("title"))) if found else None
        if found is None or question is None:
            return None
        return question, "es" if found.group(1) == "Pregunta" else "en"

    def answer(self, prompt: str) -> str | None:
        """The next simulated answer to the question in ``prompt`` (counted), or ``None``."""
        found = self.lookup(prompt)
        if found is None:
            return None
        question, language = found
        with self._lock:
            self._answers[question.id] += 1
            generation = self._answers[question.id]
        request = LlmRequest(question.id, question.title, question.content, generation, 1, prompt,
                             language, question.reference_answer)
        return simulated_answer(request, self.seed)

    def reset(self) -> None:
        """Forget the answers given: the next answer to every question is generation 1 again."""
        with self._lock:
            self._answers.clear()

    def counts(self) -> Mapping[str, int]:
        """Answers given so far, by question id (a copy)."""
        with self._lock:
            return dict(self._answers)
