"""The score stage: scored answers in; history, results and regenerations out.

:func:`decide` is the pure step shared by the in-process stage and the PyFlink job: it
folds one scored answer into the question's state and says what to emit. The Flink job
keeps the state in keyed ``ValueState``; :class:`ScoreStage` keeps it in a dict.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass

from qaflow.core import topics
from qaflow.core.messages import AnswerMessage, BestAttempt, ResultMessage, ScoreRecord, Status
from qaflow.core.retry import next_generation
from qaflow.core.routing import QuestionState, Route, apply
from qaflow.pipeline.outputs import Output
from qaflow.scoring.base import Scorer

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GatePolicy:
    threshold: float
    max_generations: int


def decide(
    answer: AnswerMessage,
    score: float,
    scorer: dict[str, str],
    state: QuestionState | None,
    policy: GatePolicy,
) -> tuple[QuestionState | None, list[Output]]:
    """New state and outputs for one scored answer; ``(state, [])`` for a duplicate."""
    q = answer.question
    attempt = BestAttempt(answer=answer.answer, score=score, generation=q.generation, model=answer.model,
                          truncated=answer.truncated)
    decision = apply(
        state, attempt, threshold=policy.threshold, max_generations=policy.max_generations, carried_best=q.best
    )
    if decision is None:
        logger.info("duplicate answer dropped question_id=%s generation=%d", q.question_id, q.generation)
        return state, []
    route_name = decision.route.value
    history = ScoreRecord(
        question_id=q.question_id,
        generation=q.generation,
        answer=answer.answer,
        score=score,
        model=answer.model,
        scorer=scorer,
        decision=route_name,
        provider=answer.provider,
        llm_latency_ms=answer.latency_ms,
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        run_id=q.run_id,
        finish_reason=answer.finish_reason,
        truncated=answer.truncated,
    )
    out = [Output.of(topics.SCORES, history, q.question_id)]
    if decision.route is Route.REGENERATE:
        again = q.model_copy(
            update={
                "generation": next_generation(q.generation, policy.max_generations),
                "delivery": 1,
                "best": decision.best,
            }
        )
        out.append(Output.of(topics.QUESTIONS, again, q.question_id))
    else:
        best = decision.best
        result = ResultMessage(
            question_id=q.question_id,
            status=Status.VALIDATED if decision.route is Route.VALIDATED else Status.EXHAUSTED,
            title=q.title,
            content=q.content,
            reference_answer=q.reference_answer,
            category=q.category,
            run_id=q.run_id,
            answer=best.answer,
            score=best.score,
            best_generation=best.generation,
            generations=q.generation,
            delivery=q.delivery,
            model=best.model,
            scorer=scorer,
            submitted_at=q.submitted_at,
            truncated=best.truncated,
        )
        out.append(Output.of(topics.RESULTS, result, q.question_id))
    return decision.state, out


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
            new_state, emitted = decide(answer, score, identity, current, self.policy)
            if not emitted:
                duplicates += 1
                continue
            assert new_state is not None
            # Terminal: keep only the marker, so a re-delivered answer is still dropped.
            changed[qid] = (
                QuestionState(last_generation=new_state.last_generation, terminal=True)
                if new_state.terminal
                else new_state
            )
            routed.append(emitted[-1].topic)
            out.extend(emitted)
        self.state.update(changed)
        self.stats.duplicates += duplicates
        self.stats.scored += len(routed)
        by_route = self.stats.by_route if self.stats.by_route is not None else {}
        for kind in routed:
            by_route[kind] = by_route.get(kind, 0) + 1
        return out
