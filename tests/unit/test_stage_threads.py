"""StageThreads: each worker steps on its own thread; a step's error reaches the caller."""

from __future__ import annotations

import threading
import time

import pytest

from qaflow.pipeline.stage_threads import StageThreads


class Stepper:
    def __init__(self, stage: str, moves: int = 0, fail_after: int | None = None) -> None:
        self.stage, self.moves, self.fail_after = stage, moves, fail_after
        self.waits: list[float] = []
        self.threads: set[str] = set()

    def step(self, timeout_s: float = 1.0) -> int:
        self.waits.append(timeout_s)
        self.threads.add(threading.current_thread().name)
        if self.fail_after is not None and len(self.waits) > self.fail_after:
            raise ValueError(f"{self.stage} broke")
        if self.moves:
            self.moves -= 1
            return 1
        time.sleep(timeout_s / 10)
        return 0


def test_each_worker_steps_on_its_own_thread_and_waits_only_after_a_step_that_moved_nothing() -> None:
    a, b = Stepper("a", moves=3), Stepper("b")
    threads = StageThreads([a, b], idle_wait_s=0.05)
    threads.start()
    time.sleep(0.3)
    threads.stop()
    threads.check()
    assert a.threads == {"stage-a"} and b.threads == {"stage-b"}
    assert a.waits[:4] == [0.0, 0.0, 0.0, 0.0] and set(a.waits[4:]) == {0.05}  # 3 moved: no wait after them
    assert b.waits[0] == 0.0 and set(b.waits[1:]) == {0.05}


def test_a_failing_step_stops_every_stage_and_is_raised_in_the_callers_thread() -> None:
    ok, bad = Stepper("ok"), Stepper("bad", moves=10, fail_after=2)
    threads = StageThreads([ok, bad], idle_wait_s=0.01)
    threads.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            threads.check()
        except ValueError as exc:
            assert str(exc) == "bad broke"
            break
        time.sleep(0.01)
    else:
        pytest.fail("the stage's error never reached the caller")
    steps = len(ok.waits)
    time.sleep(0.1)
    assert len(ok.waits) <= steps + 1  # the other stage stopped too
    threads.stop()
