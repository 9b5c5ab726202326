"""Every topic name lives here, and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass

QUESTIONS = "qa.questions"  # new questions and regenerations -> llm-worker
ANSWERS = "qa.answers"  # LLM answers -> score stage
SCORES = "qa.scores"  # every scored attempt, for the history -> storage-writer
RESULTS = "qa.results"  # validated / exhausted -> storage-writer
RETRY_QUOTA = "qa.retry.quota"  # 429s -> retry-worker
RETRY_OVERLOAD = "qa.retry.overload"  # 5xx and timeouts -> retry-worker
DEAD_LETTER = "qa.dead-letter"  # permanent errors, exhausted deliveries, poison records
CALLS = "qa.calls"  # one record per LLM call (the call ledger) -> storage-writer

ALL = (QUESTIONS, ANSWERS, SCORES, RESULTS, RETRY_QUOTA, RETRY_OVERLOAD, DEAD_LETTER, CALLS)
RETRY_TOPICS = (RETRY_QUOTA, RETRY_OVERLOAD)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int = 3
    retention_ms: int = 7 * 24 * 3600 * 1000


def default_specs(partitions: int = 3, retention_ms: int = 7 * 24 * 3600 * 1000) -> list[TopicSpec]:
    return [TopicSpec(name, partitions, retention_ms) for name in ALL]
