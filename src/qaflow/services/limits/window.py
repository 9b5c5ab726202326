"""The share of recent LLM calls answered 429: the signal that tells a quota from noise.

A provider that is merely overloaded answers a scattered few calls 429 (and others 503 or
not at all); a quota answers most of them 429 once it is spent. One 429 cannot tell the
two apart, the share over a window can: with 10% random 429s, a window of ``n`` calls holds
``k`` 429s with the binomial probability C(n,k) 0.1^k 0.9^(n-k), so half of 8 calls (k >= 4)
happens by chance with p = 0.005, half of 16 with p < 1e-4; a spent quota answers nearly
all of them 429 (p ~ 1).

:class:`QuotaWindow` keeps the outcomes of the last ``max_calls`` calls that ended in the
last ``window_s`` seconds (on any clock, in seconds), and says whether they look like a
quota: at least ``min_calls`` of them, and at least ``quota_share`` answered 429. The count
bound matters when a quota is spent after a run of answers: a 10 s window may hold hundreds
of them, and the 429s would have to outnumber them all; the last 20 calls turn within 10
429s (a quota's 429s come back at once). With 20 calls, half of them 429 by chance at 10%
has p < 1e-5. Pure: no clock of its own,
no threads (the caller holds the lock).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Outcome:
    at: float  # when the call ended, seconds on the caller's clock
    quota: bool  # answered 429
    retry_after_s: float | None = None  # the 429's Retry-After, if it had one


class QuotaWindow:
    def __init__(self, window_s: float = 10.0, max_calls: int = 20, min_calls: int = 8,
                 quota_share: float = 0.5) -> None:
        if window_s <= 0:
            msg = f"window_s must be > 0, got {window_s}"
            raise ValueError(msg)
        if not 1 <= min_calls <= max_calls:
            msg = f"need 1 <= min_calls ({min_calls}) <= max_calls ({max_calls})"
            raise ValueError(msg)
        if not 0 < quota_share <= 1:
            msg = f"quota_share must lie in (0, 1], got {quota_share}"
            raise ValueError(msg)
        self.window_s = window_s
        self.max_calls = max_calls
        self.min_calls = min_calls
        self.quota_share = quota_share
        self._outcomes: deque[Outcome] = deque()
        self._quota = 0  # 429s among _outcomes

    def add(self, outcome: Outcome) -> None:
        self._outcomes.append(outcome)
        self._quota += outcome.quota
        while len(self._outcomes) > self.max_calls:
            self._quota -= self._outcomes.popleft().quota
        self.expire(outcome.at)

    def expire(self, now: float) -> None:
        """Forget the calls that ended ``window_s`` or more before ``now``."""
        while self._outcomes and self._outcomes[0].at <= now - self.window_s:
            self._quota -= self._outcomes.popleft().quota

    def clear(self) -> None:
        self._outcomes.clear()
        self._quota = 0

    def __len__(self) -> int:
        return len(self._outcomes)

    @property
    def share(self) -> float:
        """Share of the calls in the window answered 429 (0 when empty)."""
        return self._quota / len(self._outcomes) if self._outcomes else 0.0

    def looks_like_quota(self) -> bool:
        return len(self._outcomes) >= self.min_calls and self.share >= self.quota_share

    def retry_after_s(self) -> float | None:
        """The longest Retry-After among the window's 429s (None when none had one)."""
        found = [o.retry_after_s for o in self._outcomes if o.quota and o.retry_after_s is not None]
        return max(found) if found else None
