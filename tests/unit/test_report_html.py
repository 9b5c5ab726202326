"""The HTML report of a run (qaflow.report.html): what a run answered from the store shows."""

from __future__ import annotations

from qaflow.pipeline.summary import RunSummary
from qaflow.report.html import figures, render


def scores() -> dict[str, list[float]]:
    return {"q1": [0.5, 0.9], "q2": [0.85], "q3": [0.4, 0.6]}


def test_a_run_answered_from_the_store_says_so_and_draws_no_chart_of_zero_calls() -> None:
    s = RunSummary(run_id="again", threshold=0.8, max_generations=2, questions=3, unique_questions=3,
                   cache_hits=3, answered_from={"store": 3}, mean_score_by_generation={1: 0.58, 2: 0.75})
    figs = figures(s, scores(), [])
    assert "calls" not in figs and {"histogram", "generations"} <= set(figs)
    page = render(s, figs, [])
    assert ('3 of 3 questions were answered at once, with no LLM call '
            '(3 from the store; as an earlier run scored them).') in page


def test_a_run_that_called_the_llm_charts_its_calls_and_says_nothing_of_the_store() -> None:
    s = RunSummary(run_id="first", threshold=0.8, max_generations=2, questions=3, unique_questions=3,
                   llm_calls=5, first_calls=3, regeneration_calls=2, mean_score_by_generation={1: 0.58, 2: 0.75})
    figs = figures(s, scores(), [])
    assert "calls" in figs
    assert 'id="at-once"' not in render(s, figs, [])
