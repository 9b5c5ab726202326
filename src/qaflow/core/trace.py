"""One question's timeline, built from what the store holds (pure: no I/O).

The steps are put in the pipeline's own order, not sorted by clock, so a trace reads the
same when the pods that wrote it disagree on the time by a few milliseconds:

``submitted`` → for each generation: its ``call`` rows in delivery order, each failed call
followed by its ``retry_wait``; then that generation's ``score`` → a ``dead_letter`` if the
question was dead-lettered → the ``terminal`` decision. Times are epoch seconds; ``t_s`` is
seconds since the submission.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qaflow.core.messages import CallRecord, ResultMessage, ScoreRecord

Event = dict[str, Any]


def _call(c: CallRecord) -> list[Event]:
    call: Event = {
        "step": "call",
        "at": c.started_at,
        "generation": c.generation,
        "delivery": c.delivery,
        "outcome": c.status,
        "latency_ms": round(c.latency_ms, 1),
        "provider": c.provider,
        "model": c.model,
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "finish_reason": c.finish_reason,
        "cost_usd": c.cost_usd,
    }
    if c.error:
        call["error"] = c.error
    out = [call]
    if c.retry_wait_s is not None:
        out.append(
            {
                "step": "retry_wait",
                "at": c.finished_at,
                "generation": c.generation,
                "delivery": c.delivery,
                "wait_s": round(c.retry_wait_s, 3),
                "until": c.finished_at + c.retry_wait_s,
            }
        )
    return out


def build_trace(
    question_id: str,
    *,
    submitted_at: float | None,
    calls: Sequence[CallRecord],
    attempts: Sequence[ScoreRecord],
    result: ResultMessage | None,
    dead_letters: Sequence[tuple[float, str, str]] = (),  # (failed_at, stage, reason)
    status: str | None = None,
) -> dict[str, Any]:
    """``{"question_id", "status", "submitted_at", "cost_usd", "events": [...]}``; see the module doc."""
    events: list[Event] = []
    if submitted_at is None and result is not None:
        submitted_at = result.submitted_at
    if submitted_at is not None:
        events.append({"step": "submitted", "at": submitted_at})
    scores = {a.generation: a for a in attempts}
    by_generation: dict[int, list[CallRecord]] = {}
    for c in calls:
        by_generation.setdefault(c.generation, []).append(c)
    for generation in sorted(set(by_generation) | set(scores)):
        for c in sorted(by_generation.get(generation, []), key=lambda c: (c.delivery, c.started_at)):
            events.extend(_call(c))
        a = scores.get(generation)
        if a is not None:
            events.append(
                {"step": "score", "at": a.scored_at, "generation": generation, "score": round(a.score, 4),
                 "decision": a.decision}
            )
    for failed_at, stage, reason in sorted(dead_letters):
        events.append({"step": "dead_letter", "at": failed_at, "stage": stage, "reason": reason})
    if result is not None:
        events.append(
            {"step": "terminal", "at": result.finished_at, "status": result.status.value, "score": result.score,
             "best_generation": result.best_generation, "error": result.error}
        )
    for e in events:
        e["t_s"] = None if submitted_at is None else round(e["at"] - submitted_at, 3)
    priced = [c.cost_usd for c in calls if c.cost_usd is not None]
    return {
        "question_id": question_id,
        "status": result.status.value if result is not None else status,
        "submitted_at": submitted_at,
        "cost_usd": sum(priced) if priced else None,
        "events": events,
    }
