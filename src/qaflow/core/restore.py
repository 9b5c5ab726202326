"""What a stage's own outputs say about the questions it handled (pure), for a restart.

A stage that keeps a duplicate check in memory loses it when it is killed; the records after
its group's committed offsets come again to its successor, and some were already handled:
their outputs are on the bus. Reading those outputs back (``Bus.read_since``, called by the
worker loop before the re-delivered records are handled, ``Worker(restore=...)``) and folding
them in rebuilds the check. The score stage folds results, dead letters and regenerations
(:mod:`qaflow.core.score_restore`); the llm and retry stages fold dead letters only
(:class:`EndedQuestions`, :func:`fold_dead_letters`).

"Ended" for the llm and retry stages means: some dead letter carries the question, at any
generation. A dead letter carrying a question ends it ``failed`` (docs/architecture.md), and
nothing after it may end it again, so any later record of the question (a re-delivery, a
second copy a retry-worker released twice, a later generation) is dropped without a call.
Results are not read: they are the score stage's, and an answer published again after a kill
is harmless (the score stage's duplicate check drops it); reading only ``qa.dead-letter``,
which failures alone fill, keeps the read at a restart small.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from qaflow.core import topics
from qaflow.core.messages import DeadLetter
from qaflow.core.outputs import Output

DEAD_LETTER_TOPICS = (topics.DEAD_LETTER,)
# Question ids remembered as ended: a duplicate comes within a commit window or a retry's wait
# (minutes), so the oldest are forgotten past this many (about 100 bytes each).
ENDED_CAPACITY = 100_000


@dataclass
class RestoreStats:
    """What one fold saw: records read, questions marked ended or advanced, undecodable records."""

    records: int = 0
    ended: int = 0
    advanced: int = 0
    skipped: int = 0


def read_object(value: bytes) -> dict[str, Any] | None:
    """The record's JSON object, or None. Only ids and counters are read, so the full message
    validation (``decode_for_topic``) is not paid for every record on the topic."""
    try:
        doc = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def dead_letter_question(doc: dict[str, Any] | None) -> tuple[str | None, bool]:
    """``(question id, readable)`` of a decoded dead letter: the id of the question it carries
    (None for a dead letter of a record that was no question, which ends nothing), and False
    when the record cannot be read as one."""
    question = doc.get("question") if doc is not None else None
    qid = question.get("question_id") if isinstance(question, dict) else None
    if doc is None or (question is not None and not isinstance(qid, str)):
        return None, False
    return (qid if isinstance(qid, str) else None), True


class EndedQuestions:
    """Question ids that ended failed, the oldest forgotten past ``capacity``. Thread-safe: the
    llm-worker's calls run in a pool, and two copies of one question may fail at once."""

    def __init__(self, capacity: int = ENDED_CAPACITY) -> None:
        if capacity < 1:
            msg = "capacity must be >= 1"
            raise ValueError(msg)
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, question_id: object) -> bool:
        with self._lock:
            return question_id in self._ids

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)

    def end(self, question_id: str) -> bool:
        """Mark ``question_id`` ended; True when it was not already (this end is the first)."""
        with self._lock:
            if question_id in self._ids:
                return False
            self._ids[question_id] = None
            while len(self._ids) > self.capacity:
                self._ids.popitem(last=False)
            return True


def fold_dead_letters(ended: EndedQuestions, outputs: Iterable[tuple[str, str | None, bytes]]) -> RestoreStats:
    """Mark ended each question a dead letter among ``(logical topic, key, value)`` carries;
    other topics are ignored. ``ended`` counts the questions newly marked."""
    stats = RestoreStats()
    for topic, _key, value in outputs:
        if topic not in DEAD_LETTER_TOPICS:
            continue
        stats.records += 1
        qid, readable = dead_letter_question(read_object(value))
        if not readable:
            stats.skipped += 1
        elif qid is not None and ended.end(qid):
            stats.ended += 1
    return stats


def first_ends(ended: EndedQuestions, outputs: Iterable[Output]) -> tuple[list[Output], int]:
    """``outputs`` without the dead letters of questions already ended, marking the others'
    questions ended (the check and the mark are one step, so of two copies of a question failing
    at once only one dead letter goes out); and how many were dropped."""
    kept: list[Output] = []
    dropped = 0
    for out in outputs:
        question = out.message.question if isinstance(out.message, DeadLetter) else None
        if question is not None and not ended.end(question.question_id):
            dropped += 1
            continue
        kept.append(out)
    return kept, dropped
