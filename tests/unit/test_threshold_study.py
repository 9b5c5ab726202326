"""The threshold study replays recorded attempts; with the ledger's costs it also prices each threshold."""

from __future__ import annotations

import pytest

from qaflow.report.study import by_question, study

# Question a: 0.3 then 0.9; question b: 0.85 at once; question c: 0.2, 0.4, 0.5 (exhausted at 3).
ATTEMPTS = [("a", 1, 0.3), ("a", 2, 0.9), ("b", 1, 0.85), ("c", 1, 0.2), ("c", 2, 0.4), ("c", 3, 0.5)]
COSTS = {("a", 1): 0.01, ("a", 2): 0.03, ("b", 1): 0.01, ("c", 1): 0.01, ("c", 2): 0.01, ("c", 3): 0.02}


def test_each_replayed_threshold_says_what_quality_it_bought_and_what_it_cost() -> None:
    scores = by_question(ATTEMPTS)
    low, run, above = study(scores, 0.8, 3, [0.25, 0.8, 0.95], COSTS)
    mean_first = (0.3 + 0.85 + 0.2) / 3
    # 0.25: a passes at once, b at once, c at its 2nd answer (0.4).
    assert low.calls_per_question == pytest.approx(4 / 3)
    assert low.mean_score == pytest.approx((0.3 + 0.85 + 0.4) / 3)
    assert low.quality_gain == pytest.approx((0.3 + 0.85 + 0.4) / 3 - mean_first)
    assert low.cost_per_question == pytest.approx((0.01 + 0.01 + 0.02) / 3)
    # The run's own threshold: a needs 2 answers, c uses all 3.
    assert run.final_pass_rate == pytest.approx(2 / 3)
    assert run.mean_score == pytest.approx((0.9 + 0.85 + 0.5) / 3)
    assert run.cost_per_question == pytest.approx(sum(COSTS.values()) / 3)
    # Above the run's threshold nothing can be replayed, so nothing is priced.
    assert (above.mean_score, above.quality_gain, above.cost_per_question) == (None, None, None)


def test_without_prices_the_study_has_no_cost() -> None:
    point = study(by_question(ATTEMPTS), 0.8, 3, [0.5])[0]
    assert point.cost_per_question is None and point.quality_gain is not None
