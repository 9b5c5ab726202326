"""What a consumer loop does when handling one record raises: the pure decision.

Classification is by attribute, as kafka-python's errors do it (``retriable``):

- **transient**: ``retriable`` is true, or the error is a connection/timeout error of the
  standard library (``ConnectionError``, ``TimeoutError``): a backend is unavailable, the
  record is fine. Retried with capped exponential backoff; the consumer stays alive.
- **permanent**: ``retriable`` is present and false (every :class:`QaflowError` that is not
  retriable), or the error says the record's own data is invalid (``ValueError`` -- which
  covers pydantic's ``ValidationError`` and psycopg2's "A string literal cannot contain NUL"
  --, ``TypeError``, ``LookupError``, ``UnicodeError``). The record can never succeed: it is
  dead-lettered with the reason, the stage and its origin.
- **unknown**: anything else (a bug, an unexpected library error). Tried again up to
  ``max_unknown_tries`` times, then treated as permanent for that record, so a service
  never crash-loops on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DATA_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, LookupError, UnicodeError)
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)


class Fault(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"


def classify(exc: BaseException) -> Fault:
    """The kind of failure ``exc`` is; see the module docstring for the rules."""
    retriable = getattr(exc, "retriable", None)
    if retriable is True:
        return Fault.TRANSIENT
    if retriable is False:
        return Fault.PERMANENT
    if isinstance(exc, TRANSPORT_ERRORS):
        return Fault.TRANSIENT
    if isinstance(exc, DATA_ERRORS):
        return Fault.PERMANENT
    return Fault.UNKNOWN


def describe(exc: BaseException) -> str:
    """``"ValueError: A string literal cannot contain NUL (0x00) characters."`` (one line, 500 chars)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:500]


@dataclass(frozen=True, slots=True)
class FaultPolicy:
    """Backoff for transient failures and the budget of unknown ones.

    ``cap_s`` bounds one wait; consumer loops derive it from ``max.poll.interval.ms``
    (:func:`keepalive_s`), so a wait never costs the group membership.
    """

    base_s: float = 0.5
    cap_s: float = 30.0
    max_unknown_tries: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.base_s <= self.cap_s:
            msg = "need 0 < base_s <= cap_s"
            raise ValueError(msg)
        if self.max_unknown_tries < 1:
            msg = "max_unknown_tries must be >= 1"
            raise ValueError(msg)

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (1, 2, ...): base * 2^(n-1), capped."""
        return min(self.cap_s, self.base_s * 2.0 ** max(0, min(failures - 1, 30)))

    def gives_up(self, fault: Fault, tries: int) -> bool:
        """True when the record is to be dead-lettered after ``tries`` failed tries."""
        if fault is Fault.PERMANENT:
            return True
        if fault is Fault.UNKNOWN:
            return tries >= self.max_unknown_tries
        return False

    @classmethod
    def for_poll_interval(cls, max_poll_interval_ms: int, max_unknown_tries: int = 3) -> FaultPolicy:
        """A policy whose longest wait stays well inside ``max.poll.interval.ms``."""
        cap = keepalive_s(max_poll_interval_ms)
        return cls(base_s=min(0.5, cap), cap_s=cap, max_unknown_tries=max_unknown_tries)


KEEPALIVE_SHARE = 5  # poll at least five times per max.poll.interval.ms
KEEPALIVE_MAX_S = 30.0


def keepalive_s(max_poll_interval_ms: int) -> float:
    """Longest gap between two polls a loop allows itself: a fifth of ``max.poll.interval.ms``,
    at most 30 s (the cadence before this rule). 10 000 ms -> 2.0 s; 300 000 ms -> 30 s."""
    return min(KEEPALIVE_MAX_S, max_poll_interval_ms / 1000 / KEEPALIVE_SHARE)
