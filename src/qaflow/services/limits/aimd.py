"""Adaptive concurrency: additive increase, multiplicative decrease (AIMD), as TCP does.

The llm-worker starts at its full concurrency. A 429 halves the limit (never below the
minimum); every ``recover_after_s`` without a 429 adds one back, up to the maximum.
:class:`~qaflow.pipeline.worker.ConcurrentWorker` reads :attr:`AimdLimiter.limit` before it
polls, so the limit caps the calls in flight.

Only one decrease per congestion event: a 429 for a call that started before the latest
decrease says nothing new (it was sent under the old limit), so N calls failing together
halve the limit once, not N times.

A 429 may say when to come back (Retry-After). :meth:`pause` records that time and
:meth:`wait_until_open` holds every new call until then; calls already sent carry on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class AimdLimiter:
    def __init__(
        self,
        max_limit: int,
        *,
        min_limit: int = 1,
        recover_after_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= min_limit <= max_limit:
            msg = f"need 1 <= min_limit ({min_limit}) <= max_limit ({max_limit})"
            raise ValueError(msg)
        if recover_after_s <= 0:
            msg = "recover_after_s must be > 0"
            raise ValueError(msg)
        self.max_limit = max_limit
        self.min_limit = min_limit
        self.recover_after_s = recover_after_s
        self.clock = clock
        self._limit = max_limit
        self._last_change = clock()  # latest decrease or increase
        self._last_decrease = float("-inf")
        self._paused_until = float("-inf")
        self._cond = threading.Condition()
        self.decreases = 0
        self.increases = 0

    @property
    def limit(self) -> int:
        """Calls allowed in flight now (grows back here, so an idle worker recovers too)."""
        with self._cond:
            self._maybe_increase(self.clock())
            return self._limit

    def on_success(self) -> None:
        with self._cond:
            self._maybe_increase(self.clock())

    def on_quota(self, started_at: float, retry_after_s: float | None = None) -> bool:
        """A call started at ``started_at`` (this limiter's clock) got a 429.

        Returns True when the limit was decreased.
        """
        with self._cond:
            now = self.clock()
            if retry_after_s is not None and retry_after_s > 0:
                self._paused_until = max(self._paused_until, now + retry_after_s)
                self._cond.notify_all()
            if started_at < self._last_decrease:
                return False  # sent under the old limit: same congestion event
            old = self._limit
            self._limit = max(self.min_limit, self._limit // 2)
            self._last_decrease = self._last_change = now
            if self._limit != old:
                self.decreases += 1
                logger.info("429: concurrency limit %d -> %d", old, self._limit)
            return self._limit != old

    def pause(self, seconds: float) -> None:
        """Hold new calls for ``seconds`` (e.g. a Retry-After)."""
        with self._cond:
            self._paused_until = max(self._paused_until, self.clock() + seconds)

    def paused_for(self) -> float:
        """Seconds until new calls may start again (0 when not paused)."""
        with self._cond:
            return max(0.0, self._paused_until - self.clock())

    def wait_until_open(self, sleep: Callable[[float], object] = time.sleep) -> float:
        """Block while paused; returns the seconds waited."""
        waited = 0.0
        while (left := self.paused_for()) > 0:
            step = min(left, 1.0)
            sleep(step)
            waited += step
        return waited

    def _maybe_increase(self, now: float) -> None:
        if self._limit >= self.max_limit:
            return
        steps = int((now - self._last_change) // self.recover_after_s)
        if steps > 0:
            old = self._limit
            self._limit = min(self.max_limit, self._limit + steps)
            self._last_change += steps * self.recover_after_s
            self.increases += self._limit - old
            logger.debug("no 429 for %.1f s: concurrency limit %d -> %d", self.recover_after_s, old, self._limit)
