"""The llm-worker's limits: AIMD concurrency driven by the share of 429s over a window,
Retry-After pauses, the requests-per-minute quota (local, and shared through a real Redis),
and the provider wrapper that feeds them."""

from __future__ import annotations

import itertools
import random
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


def run_calls(aimd: AimdLimiter, clock: FakeClock, outcomes: list[str], *, latency_s: float = 1.0,
              old_api: bool = False) -> list[int]:
    """Drive ``aimd`` as the llm-worker does, on the fake clock: keep ``aimd.limit`` calls in
    flight, each taking ``latency_s`` and ending with the next of ``outcomes`` ("ok", "503" or
    "429"). Returns the limit seen after each call. ``old_api`` feeds only what the limiter
    before issue 10 understood (``on_success()``, ``on_quota(started)``)."""
    pending = iter(outcomes)
    flight: list[tuple[float, float, str]] = []  # (ends, started, outcome)
    seen: list[int] = []

    def fill() -> None:
        while len(flight) < aimd.limit and (nxt := next(pending, None)) is not None:
            # spread the starts a little, as polls do
            flight.append((clock.t + latency_s + 0.001 * len(flight), clock.t, nxt))
            flight.sort()

    fill()
    while flight:
        ends, started, outcome = flight.pop(0)
        clock.t = max(clock.t, ends)
        if outcome == "429":
            aimd.on_quota(started)
        elif old_api:
            aimd.on_success()
        elif outcome == "503":
            aimd.on_error(started)
        else:
            aimd.on_success(started)
        seen.append(aimd.limit)
        fill()
    return seen


def bernoulli(seed: int, n: int, share_429: float, share_503: float = 0.0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        u = rng.random()
        out.append("429" if u < share_429 else "503" if u < share_429 + share_503 else "ok")
    return out


def test_scattered_429s_no_longer_collapse_the_limit() -> None:
    """Issue 10: 10% random 429s cut the old limiter to 1 (it halved on each). They are noise
    to the windowed limiter: it keeps its full concurrency. Fails on the old limiter."""
    clock = FakeClock()
    aimd = AimdLimiter(16, clock=clock)
    seen = run_calls(aimd, clock, bernoulli(10, 1500, 0.10), latency_s=1.0, old_api=True)
    assert min(seen) > 1, "collapsed to one call at a time"
    assert min(seen) == 16 and aimd.decreases == 0


@given(st.lists(st.integers(0, 9), min_size=20, max_size=120), st.floats(0.05, 5.0))
@settings(max_examples=100, deadline=None)
def test_one_429_in_every_ten_calls_never_cuts(positions: list[int], latency_s: float) -> None:
    """However they fall, 10% 429s spread one per block of ten calls never make half of a
    window of >= 8 calls (at most 2 of any 8 consecutive calls), so the limit never moves."""
    outcomes = [("429" if i == p else "ok") for p in positions for i in range(10)]
    clock = FakeClock()
    aimd = AimdLimiter(16, clock=clock)
    seen = run_calls(aimd, clock, outcomes, latency_s=latency_s)
    assert aimd.decreases == 0 and aimd.quota_events == 0
    assert set(seen) == {16}


@given(st.integers(0, 2**32 - 1), st.sampled_from([4, 16, 40]))
@settings(max_examples=40, deadline=None)
def test_random_10_percent_429s_cut_at_most_twice_and_never_below_the_floor(seed: int, max_limit: int) -> None:
    """10% 429s, 10% 503s, drawn at random over 2,000 calls: a window of >= 8 calls reaches
    half 429s by chance with p <= 0.005 (binomial), so a cut is rare and bounded by the floor."""
    clock = FakeClock()
    aimd = AimdLimiter(max_limit, clock=clock)
    seen = run_calls(aimd, clock, bernoulli(seed, 2000, 0.10, 0.10), latency_s=0.5)
    assert min(seen) >= aimd.floor == max(1, max_limit // 4)
    assert aimd.decreases <= 2


def test_random_10_percent_429s_rarely_cut_at_all() -> None:
    """Over 100 fixed seeds of 2,000 calls each (10% 429s, 10% 503s, 16 in flight), a cut is
    a rare false alarm: about 0.7% of runs in a 300-seed simulation, so at most 3 of 100
    here, where the old limiter cut in every run."""
    runs_with_a_cut = 0
    for seed in range(100):
        clock = FakeClock()
        aimd = AimdLimiter(16, clock=clock)
        run_calls(aimd, clock, bernoulli(seed, 2000, 0.10, 0.10), latency_s=0.5)
        runs_with_a_cut += aimd.decreases > 0
    assert runs_with_a_cut <= 3


@given(st.floats(0.6, 1.0), st.integers(0, 2**32 - 1))
@settings(max_examples=50, deadline=None)
def test_a_sustained_quota_cuts_quickly_down_to_the_floor(share: float, seed: int) -> None:
    """>= 60% 429s: the first cut within 64 calls (4 x the 16 in flight), the floor within 120
    (over 2,000 simulated seeds at 60%: at most 51 and 85; median 7 and 32)."""
    clock = FakeClock()
    aimd = AimdLimiter(16, recover_after_s=60, clock=clock)
    seen = run_calls(aimd, clock, bernoulli(seed, 200, share), latency_s=0.2)
    first_cut = next(i for i, limit in enumerate(seen) if limit < 16)
    at_floor = next(i for i, limit in enumerate(seen) if limit == 4)
    assert first_cut < 64 and at_floor < 120
    assert seen[-1] == aimd.floor == 4  # 16 -> 8 -> 4, then held at the floor
    assert aimd.decreases == 2 and aimd.quota_events >= 2


def test_a_spent_quota_cuts_at_the_eighth_call() -> None:
    clock = FakeClock()
    aimd = AimdLimiter(16, recover_after_s=60, clock=clock)
    seen = run_calls(aimd, clock, ["429"] * 100, latency_s=0.2)
    assert seen[:9] == [16] * 7 + [8, 8]  # min_calls = 8, all 429
    assert seen.index(4) < 32  # the 16 sent before the first cut do not count again


def test_a_quota_spent_after_a_run_of_answers_is_judged_within_ten_429s() -> None:
    """The window holds the last 20 calls, not every answer of the last 10 s: 300 answers in
    2 s, then a spent quota answers at once; half of the last 20 are 429s after 10 of them."""
    clock = FakeClock()
    aimd = AimdLimiter(16, clock=clock)
    for _ in range(300):
        clock.t += 2 / 300
        aimd.on_success(clock.t - 0.2)
    rejected = 0
    while aimd.quota_events == 0:
        clock.t += 0.001
        rejected += 1
        aimd.on_quota(clock.t - 0.001, retry_after_s=7.5)
    assert rejected == 10
    assert aimd.limit == 8 and aimd.paused_for() == pytest.approx(7.5)


def test_a_quota_pauses_new_calls_for_the_longest_retry_after_but_a_lone_429_does_not() -> None:
    clock = FakeClock()
    aimd = AimdLimiter(16, min_calls=4, clock=clock)
    assert aimd.on_quota(clock.t, retry_after_s=30) is False  # one in one: too few calls to judge
    assert aimd.paused_for() == 0 and aimd.limit == 16  # that call alone waits, on its retry topic
    clock.t += 0.1
    aimd.on_success(clock.t)
    assert aimd.on_quota(clock.t, retry_after_s=2.5) is False  # 2 of 3: still too few calls
    clock.t += 0.1
    aimd.on_success(clock.t)
    assert aimd.on_quota(clock.t, retry_after_s=None) is True  # 3 of 5: a quota
    assert aimd.quota_events == 1 and aimd.limit == 8
    assert aimd.paused_for() == pytest.approx(30)  # the longest Retry-After in the window
    waited = aimd.wait_until_open(sleep=clock.sleep)
    assert waited == pytest.approx(30)
    assert aimd.paused_for() == 0


def test_after_a_quota_each_429_pauses_for_a_window_then_only_the_share_counts_again() -> None:
    clock = FakeClock()
    aimd = AimdLimiter(16, window_s=10, clock=clock)
    for _ in range(8):
        aimd.on_quota(clock.t, retry_after_s=2)
    assert aimd.quota_events == 1 and aimd.paused_for() == pytest.approx(2)
    clock.t += 3
    assert aimd.paused_for() == 0
    aimd.on_quota(clock.t, retry_after_s=4)  # one 429, 3 s after a quota: taken at its word
    assert aimd.paused_for() == pytest.approx(4) and aimd.quota_events == 1
    clock.t += 8  # 11 s after the quota: a lone 429 is noise again
    aimd.on_quota(clock.t, retry_after_s=4)
    assert aimd.paused_for() == 0


def test_old_429s_leave_the_window() -> None:
    clock = FakeClock()
    aimd = AimdLimiter(16, window_s=10, clock=clock)
    for _ in range(4):
        aimd.on_quota(clock.t)
    clock.t += 10.5  # those four are now older than the window
    for _ in range(4):
        aimd.on_success(clock.t)
    for _ in range(3):
        assert aimd.on_quota(clock.t) is False  # 3 of 7 in the window
    assert aimd.quota_share == pytest.approx(3 / 7)
    assert aimd.on_quota(clock.t) is True  # 4 of 8
    assert aimd.limit == 8


def test_aimd_decreases_once_per_congestion_event() -> None:
    clock = FakeClock()
    aimd = AimdLimiter(16, min_calls=1, clock=clock)
    started = clock.t  # eight calls sent together under the limit of 16
    clock.t += 1
    assert aimd.on_quota(started) is True
    for _ in range(7):  # their siblings fail too: sent under the old limit, not counted
        assert aimd.on_quota(started) is False
    assert aimd.limit == 8 and len(aimd.window) == 0
    clock.t += 0.5
    assert aimd.on_quota(clock.t) is True  # a call sent after the decrease: a new event
    assert aimd.limit == 4


def test_the_floor_is_a_share_of_the_maximum_or_the_minimum_whichever_is_higher() -> None:
    assert AimdLimiter(16).floor == 4
    assert AimdLimiter(16, min_limit=6).floor == 6
    assert AimdLimiter(40, floor_share=0.5).floor == 20
    assert AimdLimiter(3).floor == 1
    assert AimdLimiter(8, floor_share=0).floor == 1
    with pytest.raises(ValueError, match="floor_share"):
        AimdLimiter(8, floor_share=1.5)


def test_aimd_grows_back_one_step_per_quiet_period_up_to_the_maximum() -> None:
    clock = FakeClock()
    aimd = AimdLimiter(16, min_calls=1, recover_after_s=5, clock=clock)
    aimd.on_quota(clock.t)
    clock.t += 0.01
    aimd.on_quota(clock.t)  # 16 -> 8 -> 4 (the floor)
    assert aimd.limit == 4
    clock.t += 4.9
    aimd.on_success(clock.t)
    assert aimd.limit == 4  # not quiet for long enough yet
    clock.t += 0.2
    assert aimd.limit == 5
    clock.t += 5
    assert aimd.limit == 6
    # Scattered 429s during the recovery do not stop it (each alone is under half the window).
    aimd.window.min_calls = 8
    for i in range(20):
        clock.t += 0.25
        (aimd.on_quota if i % 10 == 0 else aimd.on_success)(clock.t)
    assert aimd.limit == 7
    clock.t += 3600
    assert aimd.limit == 16
    aimd.window.min_calls = 1
    aimd.on_quota(clock.t)
    assert aimd.limit == 8  # and a later quota halves from the recovered level


@given(st.lists(st.tuples(st.sampled_from(["quota", "ok", "error", "tick"]), st.floats(0, 20)), max_size=60),
       st.integers(1, 64), st.integers(1, 64), st.integers(1, 10))
@settings(max_examples=200, deadline=None)
def test_aimd_limit_always_within_bounds(events: list[tuple[str, float]], a: int, b: int, min_calls: int) -> None:
    lo, hi = min(a, b), max(a, b)
    clock = FakeClock()
    aimd = AimdLimiter(hi, min_limit=lo, recover_after_s=3, min_calls=min_calls, clock=clock)
    for kind, dt in events:
        clock.t += dt
        if kind == "quota":
            aimd.on_quota(clock.t - dt / 2)
        elif kind == "ok":
            aimd.on_success(clock.t - dt / 2)
        elif kind == "error":
            aimd.on_error()
        assert aimd.floor <= aimd.limit <= hi
        assert aimd.floor >= lo


def test_concurrent_worker_capacity_follows_the_aimd_limit() -> None:
    from qaflow.bus.memory import MemoryBus
    from qaflow.core import topics
    from qaflow.pipeline.worker import ConcurrentWorker

    MemoryBus.reset("aimdcap")
    bus = MemoryBus("memory://aimdcap")
    bus.start()
    clock = FakeClock()
    aimd = AimdLimiter(8, min_calls=1, clock=clock)
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
    aimd = AimdLimiter(8, min_calls=1, clock=clock)  # one 429 in one call: a quota
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
    assert len(aimd.window) == 2 and aimd.quota_share == 0  # but both calls count in the window
    assert rec.in_flight == 0
    assert [e for e in rec.events if e[0] == "call"] == [
        ("call", "error", "quota", "None"),
        ("call", "ok", "", "5"),
        ("call", "error", "overload", "None"),
    ]


def test_limited_provider_caps_the_pause_at_retry_after_cap() -> None:
    clock = FakeClock()
    aimd = AimdLimiter(8, min_calls=1, clock=clock)
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
