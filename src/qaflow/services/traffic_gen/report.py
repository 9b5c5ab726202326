"""What traffic-gen sent and what came back, as a dict (``--json``) and a rich table."""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

TERMINAL = ("validated", "exhausted", "failed")


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (``q`` in [0, 100])."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


@dataclass
class Report:
    """Thread-safe tallies. A question is *accepted* once the api answered it 200 or 202; one
    whose every request was refused (4xx, 5xx, no connection) is *refused* and not waited for."""

    run_id: str
    api_url: str
    distribution: str
    rate: float
    requests: int = 0  # questions sent (a repeat counts again; retries of one request do not)
    attempts: int = 0  # HTTP requests, retries included
    repeats: int = 0
    by_code: Counter[str] = field(default_factory=Counter)  # every reply: "200", "503", "error:ConnectTimeout"
    final_codes: Counter[str] = field(default_factory=Counter)  # the last reply of each request
    sources: Counter[str] = field(default_factory=Counter)  # cache, store, queued, in-flight
    repeat_sources: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    late: int = 0  # started more than 100 ms after their due time (the client fell behind)
    elapsed_s: float = 0.0
    status: dict[str, str] = field(default_factory=dict)  # accepted question -> latest status seen
    refused: set[str] = field(default_factory=set)
    wait_s: float = 0.0
    waited_s: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def attempt(self, code: str, latency_ms: float | None) -> None:
        with self._lock:
            self.attempts += 1
            self.by_code[code] += 1
            if latency_ms is not None:
                self.latencies_ms.append(latency_ms)

    def record(self, code: str, qid: str, status: str | None, source: str | None, repeat: bool, late: bool) -> None:
        """The outcome of one request (its last attempt)."""
        with self._lock:
            self.requests += 1
            self.repeats += repeat
            self.late += late
            self.final_codes[code] += 1
            if source:
                self.sources[source] += 1
                if repeat:
                    self.repeat_sources[source] += 1
            if code in ("200", "202"):
                self.refused.discard(qid)
                if self.status.get(qid) not in TERMINAL:
                    self.status[qid] = status or "unknown"
            elif qid not in self.status:
                self.refused.add(qid)

    def update_status(self, qid: str, status: str) -> None:
        with self._lock:
            self.status[qid] = status

    def pending(self) -> list[str]:
        with self._lock:
            return [q for q, s in self.status.items() if s not in TERMINAL]

    def accepted(self) -> list[str]:
        with self._lock:
            return sorted(self.status)

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
                "attempts": self.attempts,
                "repeats": self.repeats,
                "unique_questions": len(self.status) + len(self.refused),
                "accepted_questions": len(self.status),
                "refused_questions": len(self.refused),
                "elapsed_s": round(self.elapsed_s, 3),
                "achieved_rate": round(self.requests / self.elapsed_s, 3) if self.elapsed_s > 0 else None,
                "by_code": dict(sorted(self.by_code.items())),
                "final_codes": dict(sorted(self.final_codes.items())),
                "ok_200": self.final_codes.get("200", 0),
                "accepted_202": self.final_codes.get("202", 0),
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
                "not_terminal": sum(v for k, v in final.items() if k not in TERMINAL),
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
              f"{summary['unique_questions']} unique questions; {summary['attempts']} HTTP requests with retries)")
    if summary["refused_questions"]:
        t.add_row("refused questions", f"{summary['refused_questions']} (every request for them failed)")
    t.add_row("200 (known)", str(summary["ok_200"]))
    t.add_row("202 (queued)", str(summary["accepted_202"]))
    t.add_row("errors (every attempt)", ", ".join(f"{k}: {v}" for k, v in summary["errors"].items()) or "none")
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
