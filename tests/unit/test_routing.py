from hypothesis import given
from hypothesis import strategies as st

from qaflow.core.messages import BestAttempt
from qaflow.core.routing import QuestionState, Route, apply, better, route

scores = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)
thresholds = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(scores, thresholds, st.integers(1, 10), st.integers(1, 10))
def test_route_is_total_and_respects_the_caps(score: float, threshold: float, gen: int, max_gen: int) -> None:
    decided = route(score, threshold, gen, max_gen)
    if score >= threshold:
        assert decided is Route.VALIDATED
    elif gen < max_gen:
        assert decided is Route.REGENERATE
    else:
        assert decided is Route.EXHAUSTED


@given(st.lists(st.tuples(scores, st.integers(1, 5)), min_size=1, max_size=8))
def test_better_keeps_the_highest_score(attempts: list[tuple[float, int]]) -> None:
    best = None
    for score, gen in attempts:
        best = better(BestAttempt(answer="a", score=score, generation=gen), best)
    assert best is not None
    assert best.score == max(s for s, _ in attempts)


def attempt(score: float, gen: int) -> BestAttempt:
    return BestAttempt(answer=f"answer {gen}", score=score, generation=gen)


@given(st.lists(scores, min_size=1, max_size=6), thresholds, st.integers(1, 6))
def test_a_question_reaches_exactly_one_terminal_state_and_keeps_its_best(
    gen_scores: list[float], threshold: float, max_gen: int
) -> None:
    state = None
    terminal = []
    for gen, score in enumerate(gen_scores, start=1):
        decision = apply(state, attempt(score, gen), threshold=threshold, max_generations=max_gen)
        if decision is None:
            assert state is not None and state.terminal
            continue
        state = decision.state
        if decision.route is not Route.REGENERATE:
            terminal.append(decision)
    seen = gen_scores[: max_gen]
    reached_end = any(s >= threshold for s in seen) or len(gen_scores) >= max_gen
    assert len(terminal) == (1 if reached_end else 0)
    if terminal:
        last = terminal[0].state.last_generation
        assert terminal[0].best.score == max(gen_scores[:last])
        assert terminal[0].route is (Route.VALIDATED if gen_scores[last - 1] >= threshold else Route.EXHAUSTED)


def test_duplicates_and_stale_generations_are_dropped() -> None:
    first = apply(None, attempt(0.1, 1), threshold=0.5, max_generations=3)
    assert first is not None and first.route is Route.REGENERATE
    assert apply(first.state, attempt(0.9, 1), threshold=0.5, max_generations=3) is None
    done = apply(first.state, attempt(0.9, 2), threshold=0.5, max_generations=3)
    assert done is not None and done.route is Route.VALIDATED
    assert apply(done.state, attempt(0.95, 3), threshold=0.5, max_generations=3) is None


def test_exhausted_carries_the_best_attempt_even_without_state() -> None:
    carried = attempt(0.4, 1)
    decision = apply(None, attempt(0.2, 3), threshold=0.5, max_generations=3, carried_best=carried)
    assert decision is not None and decision.route is Route.EXHAUSTED
    assert decision.best == carried


def test_state_defaults() -> None:
    assert QuestionState() == QuestionState(last_generation=0, best=None, terminal=False)
