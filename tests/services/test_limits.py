"""The llm-worker's limits: AIMD concurrency, Retry-After pauses, the requests-per-minute quota
(local, and shared through a real Redis), and the provider wrapper that feeds them."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qaflow.core.errors import OverloadedError, QuotaExceededError
from qaflow.llm.base import LlmReply, LlmRequest
from qaflow.services.limits import AimdLimiter, LimitedProvider, LocalRpmLimiter, RedisRpmLimiter
from qaflow.services.limits.rpm import open_rpm_limiter


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


# --- AIMD ---------------------------------------------------------------------------------


def test_aimd_halves_on_429_and_never_below_the_minimum() -> None:
    clock = FakeClock()
    aimd = AimdLimiter(16, min_limit=3, recover_after_s=5, clock=clock)
    assert aimd.limit == 16
    for expected in (8, 4, 3, 3):
        clock.t += 0.1
        aimd.on_quota(started_at=clock.t)
        assert aimd.limit == expected


def test_aimd_decreases_once_per_congestion_event() -> None:
    clock = FakeClock()
    aimd = AimdLimiter(16, clock=clock)
    started = clock.t  # eight calls sent together under the limit of 16
    clock.t += 1
    assert aimd.on_quota(started) is True
    for _ in range(7):  # their siblings fail too: same event, no further halving
        assert aimd.on_quota(started) is False
    assert aimd.limit == 8
    clock.t += 0.5
    assert aimd.on_quota(clock.t) is True  # a call sent after the decrease: a new event
    assert aimd.limit == 4


def test_aimd_grows_back_one_step_per_quiet_period_up_to_the_maximum() -> None:
    clock = FakeClock()
    aimd = AimdLimiter(6, recover_after_s=5, clock=clock)
    aimd.on_quota(clock.t)
    aimd.on_quota(clock.t + 0.01)  # 6 -> 3 -> 1
    clock.t += 0.01
    assert aimd.limit == 1
    clock.t += 4.9
    aimd.on_success()
    assert aimd.limit == 1  # not quiet for long enough yet
    clock.t += 0.2
    assert aimd.limit == 2
    clock.t += 5
    assert aimd.limit == 3
    clock.t += 3600
    assert aimd.limit == 6
    aimd.on_quota(clock.t)
    assert aimd.limit == 3  # and a late 429 halves from the recovered level


def test_aimd_honours_retry_after_by_pausing_new_calls() -> None:
    clock = FakeClock()
    aimd = AimdLimiter(4, clock=clock)
    assert aimd.paused_for() == 0
    aimd.on_quota(clock.t, retry_after_s=2.5)
    assert aimd.paused_for() == pytest.approx(2.5)
    waited = aimd.wait_until_open(sleep=clock.sleep)
    assert waited == pytest.approx(2.5)
    assert aimd.paused_for() == 0


@given(st.lists(st.tuples(st.sampled_from(["quota", "ok", "tick"]), st.floats(0, 20)), max_size=60),
       st.integers(1, 64), st.integers(1, 64))
@settings(max_examples=200, deadline=None)
def test_aimd_limit_always_within_bounds(events: list[tuple[str, float]], a: int, b: int) -> None:
    lo, hi = min(a, b), max(a, b)
    clock = FakeClock()
    aimd = AimdLimiter(hi, min_limit=lo, recover_after_s=3, clock=clock)
    for kind, dt in events:
        clock.t += dt
        if kind == "quota":
            aimd.on_quota(clock.t - dt / 2)
        elif kind == "ok":
            aimd.on_success()
        assert lo <= aimd.limit <= hi


def test_concurrent_worker_capacity_follows_the_aimd_limit() -> None:
    from qaflow.bus.memory import MemoryBus
    from qaflow.core import topics
    from qaflow.pipeline.worker import ConcurrentWorker

    MemoryBus.reset("aimdcap")
    bus = MemoryBus("memory://aimdcap")
    bus.start()
    clock = FakeClock()
    aimd = AimdLimiter(8, clock=clock)
    worker = ConcurrentWorker("llm", bus.consumer("g", [topics.QUESTIONS]), bus.producer(), lambda m, o: [],
                              concurrency=8, limiter=aimd)
    try:
        assert worker.capacity() == 8
        aimd.on_quota(clock.t)
        assert worker.capacity() == 4
    finally:
        worker.close()


# --- The provider wrapper -----------------------------------------------------------------


class Scripted:
    name = "scripted"

    def __init__(self, outcomes: list[object]) -> None:
        self.outcomes = outcomes
        self.calls = 0

    def start(self) -> None: ...
    def close(self) -> None: ...

    def generate(self, request: LlmRequest) -> LlmReply:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return LlmReply(text="ok", model="m", provider="scripted", latency_ms=1.0, prompt_tokens=3,
                        completion_tokens=5)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []
        self.in_flight = 0

    def call_started(self) -> None:
        self.in_flight += 1

    def call_finished(self, outcome: str, error_class: str, seconds: float, reply: LlmReply | None) -> None:
        self.in_flight -= 1
        self.events.append(("call", outcome, error_class, str(reply.completion_tokens if reply else None)))

    def waited(self, reason: str, seconds: float) -> None:
        self.events.append(("wait", reason))


REQUEST = LlmRequest(question_id="0" * 32, title="t", content="", generation=1, delivery=1, prompt="p")


def test_limited_provider_feeds_429s_to_aimd_and_reraises_them_untouched() -> None:
    clock = FakeClock()
    aimd = AimdLimiter(8, clock=clock)
    rec = Recorder()
    quota = QuotaExceededError("429", status=429, retry_after_s=3.0)
    inner = Scripted([quota, "fine", OverloadedError("503", status=503)])
    p = LimitedProvider(inner, aimd, None, rec)
    with pytest.raises(QuotaExceededError) as caught:
        p.generate(REQUEST)
    assert caught.value is quota  # the answer stage routes it as before
    assert aimd.limit == 4 and aimd.paused_for() == pytest.approx(3.0)
    aimd.wait_until_open(sleep=clock.sleep)  # what the next call does first
    assert p.generate(REQUEST).text == "ok"
    with pytest.raises(OverloadedError):
        p.generate(REQUEST)
    assert aimd.limit == 4  # a 503 is not a quota signal
    assert rec.in_flight == 0
    assert [e for e in rec.events if e[0] == "call"] == [
        ("call", "error", "quota", "None"),
        ("call", "ok", "", "5"),
        ("call", "error", "overload", "None"),
    ]


def test_limited_provider_caps_the_pause_at_retry_after_cap() -> None:
    clock = FakeClock()
    aimd = AimdLimiter(8, clock=clock)
    p = LimitedProvider(Scripted([QuotaExceededError("429", retry_after_s=3600)]), aimd, None, retry_after_cap_s=10)
    with pytest.raises(QuotaExceededError):
        p.generate(REQUEST)
    assert aimd.paused_for() == pytest.approx(10)


def test_limited_provider_waits_for_the_rpm_slot_and_reports_it() -> None:
    clock = FakeClock()
    rpm = LocalRpmLimiter(60, clock=clock, sleep=clock.sleep)  # one call a second
    rec = Recorder()
    p = LimitedProvider(Scripted(["a", "b", "c"]), None, rpm, rec)
    for _ in range(3):
        p.generate(REQUEST)
    assert clock.t == pytest.approx(1002.0)  # the 2nd and 3rd waited one second each
    assert rec.events.count(("wait", "rpm")) == 2


# --- Requests per minute ------------------------------------------------------------------


def test_local_rpm_spaces_calls_evenly_so_no_window_exceeds_the_quota() -> None:
    clock = FakeClock(0.0)
    rpm = LocalRpmLimiter(120, clock=clock, sleep=lambda s: None)  # 0.5 s apart
    slots = [clock.t + rpm.reserve() for _ in range(400)]
    assert slots[:3] == [0.0, 0.5, 1.0]
    for i in range(len(slots)):
        in_window = sum(1 for s in slots if slots[i] <= s < slots[i] + 60)
        assert in_window <= 120


def test_local_rpm_is_safe_across_threads() -> None:
    clock = FakeClock(0.0)
    rpm = LocalRpmLimiter(600, clock=clock, sleep=lambda s: None)
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(50):
            w = rpm.reserve()
            with lock:
                waits.append(w)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(round(w, 6) for w in waits) == [round(i * 0.1, 6) for i in range(400)]


@pytest.fixture
def shared_rpm(redis_url: str, redis_prefix: str) -> Iterator[list[RedisRpmLimiter]]:
    """Two replicas' limiters on one Redis key."""
    limiters = [RedisRpmLimiter(600, redis_url, "openai:m", prefix=redis_prefix) for _ in range(2)]
    for lim in limiters:
        lim.start()
    yield limiters
    for lim in limiters:
        lim.close()


@pytest.mark.integration
def test_redis_rpm_is_shared_by_replicas(shared_rpm: list[RedisRpmLimiter]) -> None:
    a, b = shared_rpm
    waits = [(a if i % 2 else b).reserve() for i in range(20)]  # 600/min: one slot every 100 ms
    assert a.fallbacks == b.fallbacks == 0
    assert waits[0] == pytest.approx(0.0, abs=0.02)
    gaps = [y - x for x, y in itertools.pairwise(waits)]
    # Each reservation lands one interval after the previous one, whichever replica made it
    # (minus the few ms that pass between the calls).
    assert all(0.07 < g <= 0.1001 for g in gaps), gaps
    assert waits[-1] == pytest.approx(1.9, abs=0.1)


@pytest.mark.integration
def test_redis_rpm_acquire_keeps_a_window_under_the_quota(redis_url: str, redis_prefix: str) -> None:
    import time

    lim = RedisRpmLimiter(3000, redis_url, "x:y", prefix=redis_prefix)  # 20 ms apart
    lim.start()
    try:
        started = time.monotonic()
        for _ in range(25):
            lim.acquire()
        elapsed = time.monotonic() - started
    finally:
        lim.close()
    assert 0.45 <= elapsed < 1.5  # 24 intervals of 20 ms, not a burst


def test_redis_rpm_falls_back_to_a_local_limit_when_redis_is_down(caplog: pytest.LogCaptureFixture) -> None:
    from qaflow.devstack.ports import free_port

    lim = RedisRpmLimiter(600, f"redis://127.0.0.1:{free_port()}/0", "p:m", socket_timeout_s=0.2)
    lim.start()
    try:
        waits = [lim.reserve() for _ in range(5)]
    finally:
        lim.close()
    assert lim.fallbacks == 5  # one failed attempt opens the breaker; the rest skip Redis
    assert waits[0] == pytest.approx(0.0, abs=0.01)
    assert waits[4] == pytest.approx(0.4, abs=0.05)  # still spaced at 600/min, by this process
    assert "limiting this process alone" in caplog.text


def test_open_rpm_limiter_picks_by_settings() -> None:
    assert open_rpm_limiter(0, "redis://localhost:1/0", "p", "m") is None
    assert isinstance(open_rpm_limiter(60, "memory://", "p", "m"), LocalRpmLimiter)
    shared = open_rpm_limiter(60, "redis://127.0.0.1:1/0", "openai", "gpt")
    assert isinstance(shared, RedisRpmLimiter) and shared.key.endswith("openai:gpt")
    shared.close()
