"""Rebuilding the score stage's duplicate check from what it emitted (pure).

The score-worker keeps each question's state in memory. When it restarts, or takes over
partitions from a worker that crashed, the answers after the group's committed offsets come
again, and some of them were already routed: their result, dead letter or regeneration is
on the bus. Folding those outputs back into the state before the answers are handled makes
the re-deliveries duplicates (:func:`qaflow.core.routing.is_duplicate`) instead of second
terminal records. The PyFlink job needs none of this: its state is checkpointed.

What each output says (topics in :mod:`qaflow.core.topics`):

- ``qa.results`` (keyed by question): the question ended;
- ``qa.dead-letter`` carrying a question: the question ended ``failed``;
- ``qa.questions`` at generation ``g >= 2``: generation ``g - 1`` was routed (the score
  stage asked again; the retry-worker only re-sends generations that exist).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from qaflow.core import topics
from qaflow.core.routing import QuestionState, terminal_marker

RESTORE_TOPICS = (topics.RESULTS, topics.DEAD_LETTER, topics.QUESTIONS)


@dataclass
class RestoreStats:
    """What one fold saw: records read, questions marked ended or advanced, undecodable records."""

    records: int = 0
    ended: int = 0
    advanced: int = 0
    skipped: int = 0


def fold_outputs(state: MutableMapping[str, QuestionState],
                 outputs: Iterable[tuple[str, str | None, bytes]]) -> RestoreStats:
    """Fold ``(logical topic, key, value)`` outputs into ``state`` (question id -> state), in
    place; other topics are ignored. States only move forward: a kept best attempt stays, a
    generation never goes back, an ended question stays ended."""
    stats = RestoreStats()
    for topic, key, value in outputs:
        if topic not in RESTORE_TOPICS:
            continue
        stats.records += 1
        if topic == topics.RESULTS and key:
            _end(state, key)
            stats.ended += 1
            continue
        doc = _object(value)
        if topic == topics.DEAD_LETTER:
            question = doc.get("question") if doc is not None else None
            qid = question.get("question_id") if isinstance(question, dict) else None
            if doc is None or (question is not None and not isinstance(qid, str)):
                stats.skipped += 1
            elif isinstance(qid, str):
                _end(state, qid)
                stats.ended += 1
            continue
        qid, generation = (doc.get("question_id"), doc.get("generation")) if doc is not None else (None, None)
        if not isinstance(qid, str) or not isinstance(generation, int):
            stats.skipped += 1
        elif generation >= 2:
            current = state.get(qid) or QuestionState()
            if not current.terminal and current.last_generation < generation - 1:
                state[qid] = QuestionState(last_generation=generation - 1, best=current.best)
                stats.advanced += 1
    return stats


def _object(value: bytes) -> dict[str, Any] | None:
    """The record's JSON object, or None. Only the ids and generation are read, so the full
    message validation (``decode_for_topic``) is not paid for every question on the topic."""
    try:
        doc = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _end(state: MutableMapping[str, QuestionState], question_id: str) -> None:
    current = state.get(question_id) or QuestionState()
    state[question_id] = terminal_marker(current)
