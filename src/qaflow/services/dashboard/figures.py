"""Pure computations behind the dashboard: per-minute series, percentiles, score bins."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

SCORE_BINS = 20  # over [0, 1]; scores below 0 land in the first bin, 1.0 in the last
PERCENTILES = (50, 90, 99)


def minute_series(counts: Mapping[int, int], now_s: float, minutes: int) -> list[dict[str, int]]:
    """``minutes`` buckets ending with the current minute: ``[{"t": minute start (epoch s), "results": n}]``."""
    last = int(now_s // 60)
    return [{"t": m * 60, "results": int(counts.get(m, 0))} for m in range(last - minutes + 1, last + 1)]


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_summary(latencies_s: Iterable[float]) -> dict[str, float | int | None]:
    values = sorted(max(0.0, v) for v in latencies_s)
    out: dict[str, float | int | None] = {"count": len(values)}
    for p in PERCENTILES:
        v = percentile(values, p)
        out[f"p{p}"] = None if v is None else round(v, 3)
    out["max"] = round(values[-1], 3) if values else None
    return out


def score_bins(counts_by_bin: Mapping[int, int]) -> list[dict[str, float | int]]:
    """Bins of width 1/SCORE_BINS; ``counts_by_bin`` keys are floor(score * SCORE_BINS), any range."""
    totals = [0] * SCORE_BINS
    for b, n in counts_by_bin.items():
        totals[min(SCORE_BINS - 1, max(0, int(b)))] += int(n)
    return [{"lo": round(i / SCORE_BINS, 3), "hi": round((i + 1) / SCORE_BINS, 3), "count": totals[i]}
            for i in range(SCORE_BINS)]
