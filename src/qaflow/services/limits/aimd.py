"""Adaptive concurrency: additive increase, multiplicative decrease (AIMD), as TCP does,
driven by the share of 429s over a window rather than by each one.

The llm-worker starts at its full concurrency. :class:`~qaflow.pipeline.worker.ConcurrentWorker`
reads :attr:`AimdLimiter.limit` before it polls, so the limit caps the calls in flight.

**Decrease.** Every finished call is recorded in a
:class:`~qaflow.services.limits.window.QuotaWindow` (the last ``window_calls`` calls that
ended in the last ``window_s`` seconds). When at least ``min_calls`` of them are there and
at least ``quota_share`` of them were answered 429, the provider is enforcing a quota: the
limit halves once, the window starts afresh, and new calls pause for the longest
Retry-After in it. A scattered 429 from an overloaded provider (10% of calls, say) leaves
the share far under one half and changes nothing; that call alone waits its Retry-After, on
the retry topic. (The old limiter halved and paused on each 429: under 10% 429s it cut 46
times, 40 of them down to 1; issue 10.)

Once a window has been judged a quota, the provider has shown it enforces one: for the next
``window_s`` every 429 is taken at its word and pauses new calls for its Retry-After, as the
old limiter did for each, so the bursts after each pause cost one 429, not ten.

Only calls *started* after the latest decrease are recorded: a call sent under the old limit
says nothing about the new one (as TCP halves at most once per window of data, RFC 6582).

**Floor.** The limit never drops below ``floor = max(min_limit, ceil(floor_share x max_limit))``,
a quarter (two halvings) by default. Why a quarter, from the benchmark (bench/llm_worker.py,
docs/services.md): its quota of R = 1200 calls a minute at L = 0.2 s a call needs R x L = 4
calls in flight, a quarter of the worker's 16, so AIMD alone can get there (81-85% of R without
QAFLOW_RPM_LIMIT, in three runs); a floor of a half would leave it all to the pauses. Lower buys nothing:
at the floor each window judged a quota still pauses new calls for its Retry-After, so the
rate still falls to what the provider allows. And noise does not reach it: under 10% 429s,
10% 503s and 10% timeouts the benchmark saw no decrease at all (the old limiter averaged 3
of 16), so the floor only bounds a rare false alarm to 75% of the concurrency. The right
tool for a known quota is QAFLOW_RPM_LIMIT (94-99% of R, at most 1% 429s); AIMD is the net.

**Increase.** Every ``recover_after_s`` without a decrease adds one, up to the maximum; the
limit grows back even while the worker is idle.

A pause (a judged quota, a 429 soon after one, or an explicit :meth:`pause`) holds every new
call in :meth:`wait_until_open`; calls already sent carry on.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from qaflow.services.limits.window import Outcome, QuotaWindow

logger = logging.getLogger(__name__)

FLOOR_SHARE = 0.25  # of max_limit: two halvings; see the module docstring
WINDOW_S = 10.0
WINDOW_CALLS = 20
MIN_CALLS = 8
QUOTA_SHARE = 0.5


class AimdLimiter:
    def __init__(
        self,
        max_limit: int,
        *,
        min_limit: int = 1,
        floor_share: float = FLOOR_SHARE,
        recover_after_s: float = 5.0,
        window_s: float = WINDOW_S,
        window_calls: int = WINDOW_CALLS,
        min_calls: int = MIN_CALLS,
        quota_share: float = QUOTA_SHARE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= min_limit <= max_limit:
            msg = f"need 1 <= min_limit ({min_limit}) <= max_limit ({max_limit})"
            raise ValueError(msg)
        if not 0 <= floor_share <= 1:
            msg = f"floor_share must lie in [0, 1], got {floor_share}"
            raise ValueError(msg)
        if recover_after_s <= 0:
            msg = "recover_after_s must be > 0"
            raise ValueError(msg)
        self.max_limit = max_limit
        self.min_limit = max(min_limit, min(max_limit, math.ceil(floor_share * max_limit)))  # the floor
        self.recover_after_s = recover_after_s
        self.clock = clock
        self.window = QuotaWindow(window_s, max(window_calls, min_calls), min_calls, quota_share)
        self._limit = max_limit
        self._last_change = clock()  # latest decrease or increase
        self._last_decrease = float("-inf")
        self._paused_until = float("-inf")
        self._quota_until = float("-inf")  # a quota was judged: each 429 pauses until then
        self._cond = threading.Condition()
        self.decreases = 0  # times the limit went down
        self.quota_events = 0  # windows judged a quota (at the floor these only pause)
        self.increases = 0

    @property
    def floor(self) -> int:
        return self.min_limit

    @property
    def limit(self) -> int:
        """Calls allowed in flight now (grows back here, so an idle worker recovers too)."""
        with self._cond:
            self._maybe_increase(self.clock())
            return self._limit

    @property
    def quota_share(self) -> float:
        """Share of the calls in the window answered 429."""
        with self._cond:
            self.window.expire(self.clock())
            return self.window.share

    def on_success(self, started_at: float | None = None) -> None:
        """A call (started at ``started_at`` on this limiter's clock, if known) was answered."""
        self._record(started_at, quota=False)

    def on_error(self, started_at: float | None = None) -> None:
        """A call failed for another reason than a quota (5xx, timeout): it counts as a call."""
        self._record(started_at, quota=False)

    def on_quota(self, started_at: float, retry_after_s: float | None = None) -> bool:
        """A call started at ``started_at`` (this limiter's clock) got a 429.

        Returns True when this 429 made the window a quota (a decrease, unless at the floor,
        and a pause for the window's longest Retry-After).
        """
        return self._record(started_at, quota=True, retry_after_s=retry_after_s)

    def _record(self, started_at: float | None, *, quota: bool, retry_after_s: float | None = None) -> bool:
        with self._cond:
            now = self.clock()
            self._maybe_increase(now)
            if quota and retry_after_s is not None and retry_after_s > 0 and now < self._quota_until:
                self._paused_until = max(self._paused_until, now + retry_after_s)  # a known quota
            if started_at is not None and started_at < self._last_decrease:
                return False  # sent under the old limit: nothing new
            self.window.add(Outcome(now, quota, retry_after_s))
            if not (quota and self.window.looks_like_quota()):
                return False
            share, calls, pause = self.window.share, len(self.window), self.window.retry_after_s()
            self.window.clear()
            self.quota_events += 1
            self._quota_until = now + self.window.window_s
            if pause is not None and pause > 0:
                self._paused_until = max(self._paused_until, now + pause)
                self._cond.notify_all()
            old = self._limit
            self._limit = max(self.min_limit, self._limit // 2)
            self._last_decrease = self._last_change = now
            if self._limit != old:
                self.decreases += 1
            logger.info(
                "429s on %.0f%% of the last %d calls: a quota; concurrency limit %d -> %d, pause %.1f s",
                100 * share, calls, old, self._limit, pause or 0.0,
            )
            return True

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
            logger.debug("no quota for %.1f s: concurrency limit %d -> %d", self.recover_after_s, old, self._limit)
