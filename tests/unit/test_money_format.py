"""One money format (qaflow.core.cost.format_usd) for the run summary, the report and the dashboard."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qaflow.core.cost import format_usd
from qaflow.pipeline.summary import RunSummary


@pytest.mark.parametrize(("usd", "text"), [
    (0.0, "$0.00"),
    (0.5, "$0.50"),
    (0.1, "$0.10"),
    (0.123456, "$0.123"),
    (0.0012, "$0.0012"),  # the brief's example: not $0.00120, not $0.0012000
    (0.000165, "$0.000165"),  # gpt-4o-mini's ~300+200 tokens: not rounded to $0.0002 (4 decimals) or $0.00
    (0.00175, "$0.00175"),
    (0.0000012345, "$0.00000123"),
    (0.999, "$0.999"),
    (0.9996, "$1.00"),
    (1.0, "$1.00"),
    (12.345, "$12.35"),
    (1234.5, "$1,234.50"),
    (1e-9, "<$0.00000001"),
    (-0.0012, "-$0.0012"),
])
def test_cents_from_a_dollar_three_significant_digits_below(usd: float, text: str) -> None:
    assert format_usd(usd) == text


@given(st.floats(min_value=1e-8, max_value=0.99, allow_nan=False))
def test_below_a_dollar_the_text_is_within_half_a_percent(usd: float) -> None:
    text = format_usd(usd)
    assert text.startswith("$0.") and not (len(text.split(".")[1]) > 2 and text.endswith("0"))
    assert float(text[1:]) == pytest.approx(usd, rel=0.005, abs=5e-9)


def test_the_run_summary_speaks_the_same_format() -> None:
    s = RunSummary(run_id="r", llm_calls=3, cost=0.0012, cost_per_question=0.0004,
                   cost_by_kind={"first": 0.001, "regeneration": 0.0002})
    assert s.cost_text() == ("$0.0012 in all, $0.0004 per question ($0.40 per 1,000): first answers $0.001, "
                             "regeneration $0.0002, retries $0.00")


def test_failure_reasons_reach_the_json_summary_in_order() -> None:
    s = RunSummary(run_id="r", failed=5, failure_reasons=[("connection refused", 4), ("HTTP 400", 1)])
    assert s.to_dict()["failure_reasons"] == [{"reason": "connection refused", "questions": 4},
                                              {"reason": "HTTP 400", "questions": 1}]
    assert s.succeeded == 0 and RunSummary(run_id="r", validated=1, exhausted=2).succeeded == 3
