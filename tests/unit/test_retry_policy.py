import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qaflow.core import topics
from qaflow.core.errors import ErrorClass
from qaflow.core.retry import RetryPolicy, next_delivery, next_generation, retry_topic

policy = RetryPolicy(max_delivery_attempts=5, quota_delay_s=20, retry_after_cap_s=120, overload_base_s=1,
                     overload_cap_s=30)


@given(st.integers(1, 4), st.floats(min_value=0, max_value=10_000, allow_nan=False))
def test_quota_honours_retry_after_capped(delivery: int, retry_after: float) -> None:
    assert policy.delay(ErrorClass.QUOTA, delivery, retry_after_s=retry_after) == min(retry_after, 120)


def test_quota_without_retry_after_uses_the_fixed_delay() -> None:
    assert policy.delay(ErrorClass.QUOTA, 1) == 20


@given(st.sampled_from([ErrorClass.OVERLOAD, ErrorClass.TIMEOUT]), st.integers(1, 4), st.integers(0, 2**32))
def test_overload_backoff_is_jittered_exponential_and_capped(cls: ErrorClass, delivery: int, seed: int) -> None:
    delay = policy.delay(cls, delivery, rng=random.Random(seed))
    assert delay is not None
    assert 0 <= delay <= min(30, 2 ** (delivery - 1))


def test_overload_ceiling_grows_then_caps() -> None:
    rng = random.Random(1)
    p = RetryPolicy(max_delivery_attempts=50, overload_base_s=1, overload_cap_s=8)
    ceilings = [max(p.delay(ErrorClass.OVERLOAD, d, rng=rng) or 0 for _ in range(300)) for d in (1, 2, 3, 4, 10)]
    assert ceilings[0] <= 1 < ceilings[2] <= 4 < ceilings[4] <= 8


@given(st.sampled_from(list(ErrorClass)), st.integers(5, 20))
def test_delivery_cap_and_permanent_errors_dead_letter(cls: ErrorClass, delivery: int) -> None:
    assert policy.delay(cls, delivery) is None
    assert policy.delay(ErrorClass.PERMANENT, 1) is None


def test_error_classes_have_separate_paths() -> None:
    assert retry_topic(ErrorClass.QUOTA) == topics.RETRY_QUOTA
    assert retry_topic(ErrorClass.OVERLOAD) == retry_topic(ErrorClass.TIMEOUT) == topics.RETRY_OVERLOAD
    assert retry_topic(ErrorClass.PERMANENT) == topics.DEAD_LETTER


def test_counters_are_capped_and_independent() -> None:
    assert next_delivery(1, 3) == 2
    assert next_generation(1, 3) == 2
    with pytest.raises(ValueError, match="cap"):
        next_delivery(3, 3)
    with pytest.raises(ValueError, match="cap"):
        next_generation(3, 3)


def test_bad_policy_fails_fast() -> None:
    with pytest.raises(ValueError, match="max_delivery_attempts"):
        RetryPolicy(max_delivery_attempts=0)
    with pytest.raises(ValueError, match="overload"):
        RetryPolicy(overload_base_s=10, overload_cap_s=1)


@given(st.sampled_from([ErrorClass.OVERLOAD, ErrorClass.TIMEOUT]), st.integers(1, 4),
       st.floats(min_value=0, max_value=10_000, allow_nan=False))
def test_overload_and_timeout_honour_retry_after_capped_as_quota_is(cls: ErrorClass, delivery: int,
                                                                    retry_after: float) -> None:
    # A 503 with "Retry-After: 5" was retried after a jittered 0.32 s on the old main.
    assert policy.delay(cls, delivery, retry_after_s=retry_after, rng=random.Random(0)) == min(retry_after, 120)
