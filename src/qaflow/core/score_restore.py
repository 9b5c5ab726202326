"""Rebuilding the score stage's duplicate check from what it emitted (pure).

The score-worker keeps each question's state in memory. When it restarts, or takes over
partitions from a worker that crashed, the answers after the group's committed offsets come
again, and some of them were already routed: their result, dead letter or regeneration is
on the bus. Folding those outputs back into the state before the answers are handled makes
the re-deliveries duplicates (:func:`qaflow.core.routing.is_duplicate`) instead of second
terminal records. The PyFlink job needs none of this: its state is checkpointed. What is shared with the other
stages' restores (reading a record, a dead letter's question) is in :mod:`qaflow.core.restore`.

What each output says (topics in :mod:`qaflow.core.topics`):

- ``qa.results`` (keyed by question): the question ended;
- ``qa.dead-letter`` carrying a question: the question ended ``failed``;
- ``qa.questions`` at generation ``g >= 2``: generation ``g - 1`` was routed (the score
  stage asked again; the retry-worker only re-sends generations that exist).
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping

from qaflow.core import topics
from qaflow.core.restore import RestoreStats, dead_letter_question, read_object
from qaflow.core.routing import QuestionState, terminal_marker

RESTORE_TOPICS = (topics.RESULTS, topics.DEAD_LETTER, topics.QUESTIONS)


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
        doc = read_object(value)
        if topic == topics.DEAD_LETTER:
            ended, readable = dead_letter_question(doc)
            if not readable:
                stats.skipped += 1
            elif ended is not None:
                _end(state, ended)
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


def _end(state: MutableMapping[str, QuestionState], question_id: str) -> None:
    current = state.get(question_id) or QuestionState()
    state[question_id] = terminal_marker(current)
