"""What traffic-gen sent and what came back, as a dict (``--json``) and a rich table."""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

TERMINAL = ("validated", "exhausted", "failed")
REJECTED = "rejected"  # a 4xx other than 429: the api will never know the question


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (``q`` in [0, 100])."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


@dataclass
class Report:
    run_id: str
    api_url: str
    distribution: str
    rate: float
    requests: int = 0
    repeats: int = 0
    by_code: Counter[str] = field(default_factory=Counter)  # "200", "202", "503", "error:ConnectTimeout"
    sources: Counter[str] = field(default_factory=Counter)  # cache, store, queued, in-flight
    repeat_sources: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    late: int = 0  # started more than 100 ms after their due time (the client fell behind)
    elapsed_s: float = 0.0
    # question id -> latest status seen (from the POST, then from polling)
    status: dict[str, str] = field(default_factory=dict)
    wait_s: float = 0.0
    waited_s: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, code: str, latency_ms: float | None, qid: str, status: str | None,
               source: str | None, repeat: bool, late: bool) -> None:
        with self._lock:
            self.requests += 1
            self.repeats += repeat
            self.late += late
            self.by_code[code] += 1
            if latency_ms is not None:
                self.latencies_ms.append(latency_ms)
            if source:
                self.sources[source] += 1
                if repeat:
                    self.repeat_sources[source] += 1
            if status is not None:
                if self.status.get(qid) not in TERMINAL:
                    self.status[qid] = status
            else:  # refused or lost: polling asks the api whether it recorded the question after all
                self.status.setdefault(qid, "unknown")

    def update_status(self, qid: str, status: str) -> None:
        with self._lock:
            self.status[qid] = status

    def pending(self) -> list[str]:
        with self._lock:
            return [q for q, s in self.status.items() if s not in TERMINAL and s != REJECTED]

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            lat = sorted(self.latencies_ms)
            final = Counter(self.status.values())
            return {
                "run_id": self.run_id,
                "api_url": self.api_url,
                "distribution": self.distribution,
                "rate": self.rate,
                "requests": self.requests,
                "repeats": self.repeats,
                "unique_questions": len(self.status),
                "elapsed_s": round(self.elapsed_s, 3),
                "achieved_rate": round(self.requests / self.elapsed_s, 3) if self.elapsed_s > 0 else None,
                "by_code": dict(sorted(self.by_code.items())),
                "ok_200": self.by_code.get("200", 0),
                "accepted_202": self.by_code.get("202", 0),
                "errors": {k: v for k, v in sorted(self.by_code.items()) if k not in ("200", "202")},
                "sources": dict(sorted(self.sources.items())),
                "repeat_sources": dict(sorted(self.repeat_sources.items())),
                "late": self.late,
                "latency_ms": {
                    "p50": percentile(lat, 50),
                    "p90": percentile(lat, 90),
                    "p99": percentile(lat, 99),
                    "max": lat[-1] if lat else None,
                },
                "terminal": {k: final.get(k, 0) for k in TERMINAL},
                "rejected": final.get(REJECTED, 0),
                "not_terminal": sum(v for k, v in final.items() if k not in TERMINAL and k != REJECTED),
                "wait_s": self.wait_s,
                "waited_s": None if self.waited_s is None else round(self.waited_s, 3),
            }


def render(summary: dict[str, Any]) -> Any:
    """A rich Table of the summary."""
    from rich.table import Table

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} ms"

    t = Table(title=f"traffic-gen run {summary['run_id']}", show_header=False, title_justify="left")
    t.add_column("what", style="bold")
    t.add_column("value")
    t.add_row("api", summary["api_url"])
    t.add_row("arrivals", f"{summary['distribution']} at {summary['rate']:g}/s "
              f"(achieved {summary['achieved_rate'] or 0:g}/s over {summary['elapsed_s']:.1f} s)")
    t.add_row("requests", f"{summary['requests']} ({summary['repeats']} repeats, "
              f"{summary['unique_questions']} unique questions)")
    t.add_row("200 (known)", str(summary["ok_200"]))
    t.add_row("202 (queued)", str(summary["accepted_202"]))
    t.add_row("errors", ", ".join(f"{k}: {v}" for k, v in summary["errors"].items()) or "none")
    t.add_row("answered from", ", ".join(f"{k}: {v}" for k, v in summary["sources"].items()) or "-")
    t.add_row("repeats answered from", ", ".join(f"{k}: {v}" for k, v in summary["repeat_sources"].items()) or "-")
    lat = summary["latency_ms"]
    t.add_row("latency", f"p50 {ms(lat['p50'])}, p90 {ms(lat['p90'])}, p99 {ms(lat['p99'])}, max {ms(lat['max'])}")
    if summary["late"]:
        t.add_row("late starts", f"{summary['late']} (client fell behind the arrival schedule)")
    if summary["wait_s"]:
        term = summary["terminal"]
        t.add_row("terminal", ", ".join(f"{k}: {v}" for k, v in term.items())
                  + f"; not terminal: {summary['not_terminal']}")
        t.add_row("waited", f"{summary['waited_s']:.1f} s of at most {summary['wait_s']:g} s")
    return t
