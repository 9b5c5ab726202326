"""Each stage's worker stepping on a thread of its own: ``qaflow run`` over a real bus.

On Kafka every step waits somewhere: a poll for records, a flush for the broker's
acknowledgements, a commit, a PostgreSQL or Redis round trip. Those waits release the GIL.
Stepped round-robin on one thread, each stage's waits idled the other three: a wall-clock
py-spy profile of the loop (3,000 questions, lexical scorer, offline simulator at 0 ms) had
the loop's thread in Kafka flush 16.5 %, poll 15.1 %, commit 7.2 % and waiting for LLM calls
10.6 % of its time, at 0.52 of a core (docs/performance.md, "`qaflow run` on a thread per
stage"). On a thread each, one stage's wait is another's turn, as with the services'
processes; the Python work still shares one GIL.

The in-memory bus keeps the round-robin loop (:meth:`EmbeddedPipeline._pump`): its steps never
wait, and its order is deterministic, which its tests rely on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Protocol

logger = logging.getLogger(__name__)


class Steppable(Protocol):
    stage: str

    def step(self, timeout_s: float = 1.0) -> int: ...


class StageThreads:
    """One daemon thread per worker, each calling ``step`` until :meth:`stop`.

    A step that moved nothing makes the next one wait up to ``idle_wait_s`` (s) for records;
    one that moved something is followed at once by a step that does not wait. The first
    exception out of any step stops every thread and is raised again by :meth:`check` in the
    caller's thread. The workers are started and closed by the caller, outside the threads.
    """

    def __init__(self, workers: Sequence[Steppable], *, idle_wait_s: float) -> None:
        self.workers = list(workers)
        self.idle_wait_s = idle_wait_s
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._loop, args=(w,), name=f"stage-{w.stage}", daemon=True) for w in self.workers
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def _loop(self, worker: Steppable) -> None:
        wait = 0.0
        try:
            while not self._stop.is_set():
                wait = 0.0 if worker.step(wait) else self.idle_wait_s
        except BaseException as exc:  # handed to the caller's thread by check()
            logger.debug("stage %s failed", worker.stage, exc_info=True)
            if self._error is None:
                self._error = exc
            self._stop.set()

    def check(self) -> None:
        """Raise the first error a stage's step raised, if any (in the caller's thread)."""
        if self._error is not None:
            raise self._error

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop stepping and join every thread (each finishes the step it is in: at most about
        ``idle_wait_s`` plus one step's work). Raises RuntimeError naming a thread still alive."""
        self._stop.set()
        for t in self._threads:
            if t.is_alive() and t is not threading.current_thread():
                t.join(timeout_s)
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            msg = f"stage threads still running after {timeout_s:g} s: {', '.join(stuck)}"
            raise RuntimeError(msg)
