"""The llm-worker's AIMD settings fail fast, naming the variable (issue 10, item 4)."""

import pytest

from qaflow.core.errors import ConfigError
from qaflow.core.settings import LlmWorkerSettings, load


def test_aimd_defaults() -> None:
    s = load(LlmWorkerSettings, {})
    assert (s.aimd_floor_share, s.aimd_window_s, s.aimd_window_calls, s.aimd_min_calls, s.aimd_quota_share) == (
        0.25, 10.0, 20, 8, 0.5)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QAFLOW_AIMD_FLOOR_SHARE": "1.5"}, "QAFLOW_AIMD_FLOOR_SHARE: Input should be less than or equal to 1"),
        ({"QAFLOW_AIMD_QUOTA_SHARE": "0"}, "QAFLOW_AIMD_QUOTA_SHARE: Input should be greater than 0"),
        ({"QAFLOW_AIMD_WINDOW_S": "0"}, "QAFLOW_AIMD_WINDOW_S: Input should be greater than 0"),
        ({"QAFLOW_AIMD_MIN_CALLS": "30"}, "QAFLOW_AIMD_MIN_CALLS must not exceed QAFLOW_AIMD_WINDOW_CALLS"),
    ],
)
def test_bad_aimd_settings_fail_fast(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(LlmWorkerSettings, env)
    assert message in str(err.value)
