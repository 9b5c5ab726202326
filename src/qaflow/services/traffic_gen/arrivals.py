"""Arrival times and the order of requests: pure, seeded, and tested without a network.

- ``uniform``: one request every ``1 / rate`` seconds;
- ``poisson``: exponential gaps with mean ``1 / rate`` (independent arrivals);
- ``bursty``: on/off. Each ``cycle_s`` starts with an "on" phase of ``cycle_s / factor``
  during which requests arrive as a Poisson process at ``factor x rate``; the rest of the
  cycle is silent. The mean rate stays ``rate``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

BURST_FACTOR = 5.0
BURST_CYCLE_S = 10.0


def arrival_times(
    distribution: str,
    rate: float,
    rng: random.Random,
    *,
    burst_factor: float = BURST_FACTOR,
    cycle_s: float = BURST_CYCLE_S,
) -> Iterator[float]:
    """Seconds from the start at which each request is due, without end."""
    if rate <= 0:
        msg = "rate must be > 0"
        raise ValueError(msg)
    if distribution == "uniform":
        i = 0
        while True:
            yield i / rate
            i += 1
    elif distribution == "poisson":
        t = 0.0
        while True:
            yield t
            t += rng.expovariate(rate)
    elif distribution == "bursty":
        on_s = cycle_s / burst_factor
        busy = 0.0  # time spent in "on" phases
        while True:
            cycle = math.floor(busy / on_s)
            yield cycle * cycle_s + (busy - cycle * on_s)
            busy += rng.expovariate(rate * burst_factor)
    else:
        msg = f"unknown distribution {distribution!r} (poisson, bursty or uniform)"
        raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class Planned(Generic[T]):
    at_s: float  # due time, seconds from the start
    item: T
    repeat: bool  # sent before in this run


def plan(
    items: Iterable[T],
    times: Iterator[float],
    rng: random.Random,
    *,
    repeat_share: float = 0.0,
    total: int = 0,
    duration_s: float = 0.0,
) -> Iterator[Planned[T]]:
    """Pair arrival times with items: a new item, or (with probability ``repeat_share``) one
    sent before. Ends after ``total`` requests, or past ``duration_s``; with neither, when
    every item was sent once. Items are cycled again if a count or duration asks for more.
    """
    if not 0.0 <= repeat_share <= 1.0:
        msg = "repeat_share must lie in [0, 1]"
        raise ValueError(msg)
    cached: list[T] = []
    seen = 0  # items of ``cached`` sent at least once
    fresh = iter(items)
    exhausted = False
    n = 0
    bounded = total > 0 or duration_s > 0
    while total <= 0 or n < total:
        at = next(times)
        if duration_s > 0 and at > duration_s:
            return
        item: T | None = None
        repeat = False
        if seen and rng.random() < repeat_share:
            item, repeat = cached[rng.randrange(seen)], True
        elif not exhausted:
            try:
                item = next(fresh)
            except StopIteration:
                exhausted = True
            else:
                cached.append(item)
                seen += 1
        if item is None:  # every item sent once
            if not bounded or not cached:
                return
            item, repeat = cached[n % len(cached)], True
        yield Planned(at, item, repeat)
        n += 1
