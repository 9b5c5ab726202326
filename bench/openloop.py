"""An open-loop HTTP load generator: requests leave at their planned times, whatever is pending.

A closed-loop client (wrk, a thread pool sending as fast as answers come) slows down when the
server does and so under-reports the latency users would see ("coordinated omission", Gil
Tene; wrk2's README). Here every request has a due time from
:func:`qaflow.services.traffic_gen.arrivals.arrival_times` and is started at that time on an
asyncio loop (aiohttp), and its latency is measured **from its due time** to the end of the
response, so time spent waiting for the client itself counts too. Debian's ``wrk`` 4.1 is
closed-loop and wrk2 is not packaged, hence this.

Errors: a status other than the expected ones, a timeout (``timeout_s``), or a connection error.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qaflow.services.traffic_gen.arrivals import arrival_times


@dataclass(frozen=True, slots=True)
class Call:
    method: str  # GET or POST
    url: str
    body: dict[str, Any] | None = None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile ``q`` in [0, 100] of ``values``; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def _run(calls: Sequence[Call], rate: float, expect: set[int], timeout_s: float, distribution: str,
               seed: int, max_in_flight: int) -> dict[str, Any]:
    import aiohttp

    times = arrival_times(distribution, rate, random.Random(seed))
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    lags: list[float] = []
    connector = aiohttp.TCPConnector(limit=max_in_flight, force_close=False)
    client_timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def fire(call: Call, due: float) -> None:
            lags.append(loop.time() - due)
            try:
                async with session.request(call.method, call.url, json=call.body) as response:
                    await response.read()
                    status = response.status
            except TimeoutError:
                outcomes["timeout"] += 1
                return
            except aiohttp.ClientError as exc:
                outcomes[f"error:{type(exc).__name__}"] += 1
                return
            latencies.append(loop.time() - due)
            outcomes[str(status)] += 1

        tasks = []
        for call in calls:
            due = start + next(times)
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(fire(call, due)))
        sent_s = loop.time() - start
        await asyncio.gather(*tasks)
        took = loop.time() - start
    ok = sum(n for k, n in outcomes.items() if k.isdigit() and int(k) in expect)
    ms = [1000 * x for x in latencies]
    return {
        "requests": len(calls), "rate_planned": rate, "rate_sent": round(len(calls) / sent_s, 1) if sent_s else None,
        "duration_s": round(took, 2), "ok": ok, "errors": len(calls) - ok, "outcomes": dict(outcomes),
        "p50_ms": _round(percentile(ms, 50)), "p95_ms": _round(percentile(ms, 95)),
        "p99_ms": _round(percentile(ms, 99)),
        "max_ms": _round(max(ms) if ms else None), "mean_ms": _round(statistics.fmean(ms) if ms else None),
        "send_lag_p99_ms": _round(percentile([1000 * x for x in lags], 99)),
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def run(calls: Sequence[Call], rate: float, *, expect: Sequence[int] = (200, 202), timeout_s: float = 10.0,
        distribution: str = "uniform", seed: int = 0, max_in_flight: int = 1000) -> dict[str, Any]:
    """Send ``calls`` at ``rate`` per second (open loop); latency percentiles in ms and error counts.

    ``outcomes`` counts responses by status code, plus ``timeout`` and ``error:<type>``;
    ``errors`` is every call whose status is not in ``expect``. ``send_lag_p99_ms`` is how
    late the client started calls (a busy client shows here, and in the latencies).
    """
    began = time.perf_counter()
    result = asyncio.run(_run(calls, rate, set(expect), timeout_s, distribution, seed, max_in_flight))
    result["wall_s"] = round(time.perf_counter() - began, 2)
    return result
