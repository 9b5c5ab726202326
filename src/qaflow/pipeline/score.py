"""The score stage in process: scored answers in; history, results and regenerations out.

The decision is :func:`qaflow.core.score_step.score_step`, the same function the PyFlink job
calls; :class:`ScoreStage` scores a batch, keeps each question's state in a mapping and
returns the outputs the step gave.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass

from qaflow.core.messages import AnswerMessage
from qaflow.core.outputs import Output
from qaflow.core.routing import QuestionState
from qaflow.core.score_step import GatePolicy, Outcome, Scored, score_step
from qaflow.scoring.base import Scorer

__all__ = ["GatePolicy", "ScoreStage", "ScoreStats"]  # GatePolicy: the old import path, kept


@dataclass
class ScoreStats:
    scored: int = 0
    duplicates: int = 0
    by_route: dict[str, int] | None = None


class ScoreStage:
    """Batched scoring with per-question state in a mapping (in-process mode)."""

    def __init__(
        self,
        scorer: Scorer,
        policy: GatePolicy,
        state: MutableMapping[str, QuestionState] | None = None,
    ) -> None:
        self.scorer = scorer
        self.policy = policy
        self.state: MutableMapping[str, QuestionState] = {} if state is None else state
        self.stats = ScoreStats(by_route={})

    def handle_batch(self, answers: Sequence[AnswerMessage]) -> list[Output]:
        """Score and route a batch; all or nothing: if one answer raises, no state changes, so
        the caller may handle the batch again answer by answer (per-record isolation)."""
        if not answers:
            return []
        scores = self.scorer.score([a.answer for a in answers], [a.question.reference_answer for a in answers])
        identity = self.scorer.identity
        out: list[Output] = []
        changed: dict[str, QuestionState] = {}
        duplicates, routed = 0, []
        for answer, score in zip(answers, scores, strict=True):
            qid = answer.question_id
            current = changed[qid] if qid in changed else self.state.get(qid)
            step = score_step(current, answer, Scored(score, identity), self.policy)
            if step.outcome is Outcome.DUPLICATE:
                duplicates += 1
                continue
            if step.state is not None:
                changed[qid] = step.state
            routed.append(step.outputs[-1].topic)
            out.extend(step.outputs)
        self.state.update(changed)
        self.stats.duplicates += duplicates
        self.stats.scored += len(routed)
        by_route = self.stats.by_route if self.stats.by_route is not None else {}
        for kind in routed:
            by_route[kind] = by_route.get(kind, 0) + 1
        return out
