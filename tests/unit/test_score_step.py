"""The one score decision (core/score_step.py), and the two shells that only call it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from qaflow.core import topics
from qaflow.core.errors import ErrorClass
from qaflow.core.messages import (
    AnswerMessage,
    BestAttempt,
    DeadLetter,
    Origin,
    QuestionMessage,
    ResultMessage,
    ScoreRecord,
    Status,
    decode_for_topic,
)
from qaflow.core.routing import QuestionState
from qaflow.core.score_step import Failed, GatePolicy, Outcome, Scored, score_step
from tests.unit.test_stages import TableScorer

POLICY = GatePolicy(threshold=0.8, max_generations=3)
SCORER = {"name": "lexical", "version": "2"}
ORIGIN = Origin(topic="qa.answers")
REFERENCE = "Sunlight scatters off air molecules; blue light scatters most."


def answer(text: str = "Rayleigh scattering.", *, generation: int = 1, best: BestAttempt | None = None,
           truncated: bool = False) -> AnswerMessage:
    q = QuestionMessage.new("Why is the sky blue?", "", REFERENCE)
    q = q.model_copy(update={"generation": generation, "best": best})
    return AnswerMessage(question=q, answer=text, model="m1", provider="p", latency_ms=2.0,
                         finish_reason="length" if truncated else "stop", truncated=truncated)


def scored(score: float) -> Scored:
    return Scored(score, SCORER)


def failed(reason: str = "scoring failed: model choked") -> Failed:
    return Failed(reason, "score-job", ORIGIN, b'{"raw": 1}')


def test_validated_emits_history_then_result_and_keeps_only_the_terminal_marker() -> None:
    a = answer()
    step = score_step(None, a, scored(0.9), POLICY)
    assert step.outcome is Outcome.VALIDATED and step.score == 0.9
    assert [o.topic for o in step.outputs] == [topics.SCORES, topics.RESULTS]
    assert all(o.key == a.question_id for o in step.outputs)
    history, result = (o.message for o in step.outputs)
    assert isinstance(history, ScoreRecord) and history.decision == "validated" and history.scorer == SCORER
    assert isinstance(result, ResultMessage) and result.status is Status.VALIDATED
    assert result.answer == a.answer and result.score == 0.9 and result.scorer == SCORER
    assert step.state == QuestionState(last_generation=1, best=None, terminal=True)


def test_below_threshold_with_generations_left_regenerates_and_carries_the_best() -> None:
    step = score_step(None, answer(), scored(0.3), POLICY)
    assert step.outcome is Outcome.REGENERATED
    assert [o.topic for o in step.outputs] == [topics.SCORES, topics.QUESTIONS]
    again = step.outputs[1].message
    assert isinstance(again, QuestionMessage)
    assert (again.generation, again.delivery) == (2, 1)
    assert again.best == BestAttempt(answer="Rayleigh scattering.", score=0.3, generation=1, model="m1")
    assert step.state is not None and not step.state.terminal and step.state.best == again.best


def test_exhausted_stores_the_best_attempt_not_the_last() -> None:
    best = BestAttempt(answer="Blue scatters most.", score=0.7, generation=2, model="m1")
    state = QuestionState(last_generation=2, best=best)
    step = score_step(state, answer("Because.", generation=3, best=best), scored(0.1), POLICY)
    assert step.outcome is Outcome.EXHAUSTED
    result = step.outputs[-1].message
    assert isinstance(result, ResultMessage) and result.status is Status.EXHAUSTED
    assert (result.answer, result.score, result.best_generation, result.generations) == (best.answer, 0.7, 2, 3)
    history = step.outputs[0].message
    assert isinstance(history, ScoreRecord) and history.decision == "exhausted" and history.score == 0.1
    assert step.state == QuestionState(last_generation=3, terminal=True)


def test_exhausted_uses_the_best_the_message_carried_when_the_state_was_lost() -> None:
    best = BestAttempt(answer="Blue scatters most.", score=0.6, generation=1, model="m1")
    step = score_step(None, answer("Because.", generation=3, best=best), scored(0.2), POLICY)
    result = step.outputs[-1].message
    assert isinstance(result, ResultMessage) and result.answer == best.answer and result.score == 0.6


def test_a_truncated_answer_is_never_validated() -> None:
    step = score_step(None, answer(truncated=True), scored(0.99), POLICY)
    assert step.outcome is Outcome.REGENERATED
    last = score_step(step.state, answer(generation=3, truncated=True), scored(0.99), POLICY)
    assert last.outcome is Outcome.EXHAUSTED
    result = last.outputs[-1].message
    assert isinstance(result, ResultMessage) and result.truncated and result.status is Status.EXHAUSTED


def test_a_duplicate_changes_nothing_and_emits_nothing() -> None:
    state = QuestionState(last_generation=1)
    step = score_step(state, answer(), scored(0.9), POLICY)
    assert step.outcome is Outcome.DUPLICATE and step.outputs == [] and step.state is state
    assert score_step(None, answer(), scored(0.9), POLICY).outcome is Outcome.VALIDATED


def test_nothing_passes_a_terminal_marker_not_even_a_later_generation_or_a_failure() -> None:
    done = score_step(None, answer(), scored(0.9), POLICY).state
    assert done is not None and done.terminal
    for later, result in ((answer(generation=2), scored(0.95)), (answer(generation=3), failed())):
        step = score_step(done, later, result, POLICY)
        assert step.outcome is Outcome.DUPLICATE and step.outputs == [] and step.state is done


def test_an_error_ends_the_question_failed_with_a_dead_letter() -> None:
    a = answer(generation=2)
    step = score_step(QuestionState(last_generation=1), a, failed(), POLICY)
    assert step.outcome is Outcome.FAILED and step.score is None
    assert step.state == QuestionState(last_generation=2, terminal=True)
    [out] = step.outputs
    dl = out.message
    assert out.topic == topics.DEAD_LETTER and out.key == a.question_id and isinstance(dl, DeadLetter)
    assert dl.question == a.question and dl.error_class is ErrorClass.PERMANENT
    assert (dl.reason, dl.stage, dl.origin, dl.payload) == ("scoring failed: model choked", "score-job", ORIGIN,
                                                            '{"raw": 1}')
    assert score_step(step.state, a, failed("again"), POLICY).outcome is Outcome.DUPLICATE


def test_a_failure_needs_only_the_question_a_score_needs_the_answer() -> None:
    q = answer().question
    step = score_step(None, q, failed("invalid answer: latency_ms"), POLICY)
    assert step.outcome is Outcome.FAILED
    with pytest.raises(TypeError, match="AnswerMessage"):
        score_step(None, q, scored(0.9), POLICY)


def test_a_score_the_schema_refuses_raises_and_leaves_the_state_alone() -> None:
    state = QuestionState()
    with pytest.raises(ValidationError):
        score_step(state, answer(), scored(1.5), POLICY)
    assert state == QuestionState()


def test_outputs_carry_messages_and_encode_to_what_the_topic_decodes() -> None:
    for out in score_step(None, answer(), scored(0.3), POLICY).outputs:
        assert isinstance(out.value, bytes)
        assert decode_for_topic(out.topic, out.value) == out.message


@settings(deadline=None)  # a loaded shared machine, not the step, sets the time per example
@given(st.lists(st.floats(min_value=-1.0, max_value=1.0, allow_nan=False), min_size=1, max_size=6),
       st.integers(1, 4), st.booleans())
def test_every_question_ends_once_whatever_the_scores_and_repeats(scores: list[float], max_gen: int,
                                                                   repeat: bool) -> None:
    """Feed generation after generation (each answer twice when ``repeat``): exactly one
    result while generations last, and nothing at all after it."""
    policy = GatePolicy(0.5, max_gen)
    state: QuestionState | None = None
    best: BestAttempt | None = None
    results = []
    for gen, score in enumerate(scores, start=1):
        for _ in range(2 if repeat else 1):
            step = score_step(state, answer(f"try {gen}", generation=gen, best=best), scored(score), policy)
            state = step.state
            for out in step.outputs:
                if isinstance(out.message, ResultMessage):
                    results.append(out.message)
                elif isinstance(out.message, QuestionMessage):
                    best = out.message.best
        if state is not None and state.terminal:
            assert state.best is None
    ended = any(s >= 0.5 for s in scores[:max_gen]) or len(scores) >= max_gen
    assert len(results) == (1 if ended else 0)


# -- the two shells ---------------------------------------------------------------------------


def test_the_in_process_stage_and_the_flink_job_call_the_same_core_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both shells reach ``score_step`` and store and emit exactly what it returned."""
    from qaflow.core import score_step as core_step
    from qaflow.flinkjob import records
    from qaflow.pipeline import score as stage_module

    calls: list[tuple[str, object]] = []

    def spy(where: str):  # type: ignore[no-untyped-def]
        def step(state, msg, result, policy):  # type: ignore[no-untyped-def]
            got = core_step.score_step(state, msg, result, policy)
            calls.append((where, got))
            return got
        return step

    assert stage_module.score_step is records.score_step is core_step.score_step
    monkeypatch.setattr(stage_module, "score_step", spy("stage"))
    monkeypatch.setattr(records, "score_step", spy("flink"))

    from qaflow.pipeline.score import ScoreStage

    stage = ScoreStage(TableScorer({"poor": 0.3}), POLICY)
    a = answer("poor")
    out = stage.handle_batch([a])
    [(where, step)] = calls
    assert where == "stage" and out == step.outputs and stage.state[a.question_id] is step.state  # type: ignore[attr-defined]

    calls.clear()
    flink = records.route_scored(None, a, 0.3, SCORER, "", POLICY, "qa.answers")
    [(where, step)] = calls
    assert where == "flink" and flink is step
    assert [(o.topic, o.key) for o in flink.outputs] == [(o.topic, o.key) for o in out]
    assert flink.state == stage.state[a.question_id]
