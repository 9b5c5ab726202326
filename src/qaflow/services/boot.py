"""What every worker service does at start-up and around its loop.

Load the settings (a bad value exits with code 2 and one line naming the variable), open
the bus and create the topics, count records in and out for ``/metrics``, and keep going
through a refused offset commit (a rebalance: the records are delivered again), a record
whose handling fails (dead-lettered, counted) and a broker restart (see services.runner).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import Counter
from pydantic_settings import BaseSettings

from qaflow.bus import open_bus
from qaflow.bus.base import Bus, Producer
from qaflow.core import topics
from qaflow.core.errors import BusError, CommitFailedError, ConfigError
from qaflow.core.faults import FaultPolicy
from qaflow.core.settings import BackendSettings, load
from qaflow.pipeline.worker import Abandoned

logger = logging.getLogger(__name__)
S = TypeVar("S", bound=BaseSettings)

CONSUMED = Counter("qaflow_records_consumed_total", "Records consumed and finished, by stage.", ["stage"])
PRODUCED = Counter("qaflow_records_produced_total", "Records published, by topic.", ["topic"])
COMMIT_FAILURES = Counter(
    "qaflow_commit_failures_total",
    "Offset commits refused (CommitFailedError: a rebalance, an eviction, the broker away); the records come again.",
)
PARTITIONS_LOST = Counter(
    "qaflow_partitions_lost_total",
    "Times this member was evicted from its group and lost its partitions (max.poll.interval.ms or session expired).",
)
DEAD_LETTERED = Counter(
    "qaflow_records_dead_lettered_total",
    "Records whose handling failed for good (permanent error, or unknown after the tries), by stage.",
    ["stage"],
)
HANDLING_RETRIES = Counter(
    "qaflow_records_handling_retries_total",
    "Record handling failures to be tried again (transient: backend unavailable; unknown: tries left), by stage.",
    ["stage"],
)
BUS_ERRORS = Counter(
    "qaflow_bus_errors_total", "Transport errors of the bus (broker unreachable) ridden out with a backoff."
)


def fault_policy(settings: BackendSettings) -> FaultPolicy:
    """Backoff whose longest wait stays inside QAFLOW_KAFKA_MAX_POLL_INTERVAL_MS."""
    return FaultPolicy.for_poll_interval(settings.kafka_max_poll_interval_ms)


class Interrupted(Abandoned):
    """Raised inside a step to abandon its batch without committing (shutdown while waiting)."""


def load_settings(cls: type[S], service: str) -> S:
    try:
        return load(cls)
    except ConfigError as exc:
        print(f"{service}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


def open_worker_bus(settings: BackendSettings) -> Bus:
    """The bus, started, with qaflow's topics created when missing (QAFLOW_KAFKA_CREATE_TOPICS)."""
    bus = open_bus(settings.bus_url, settings)
    bus.start()
    bus.ensure_topics(topics.default_specs(settings.kafka_partitions, settings.kafka_retention_ms))
    return bus


def group_of(settings: Any, default: str) -> str:
    return str(settings.consumer_group or default)


class MeteredProducer:
    """Counts every record sent, by topic; ``on_send`` sees each topic too."""

    def __init__(self, inner: Producer, on_send: Callable[[str], None] | None = None) -> None:
        self.inner = inner
        self.on_send = on_send

    def start(self) -> None:
        self.inner.start()

    def send(self, topic: str, key: str | None, value: bytes) -> None:
        self.inner.send(topic, key, value)
        PRODUCED.labels(topic).inc()
        if self.on_send is not None:
            self.on_send(topic)

    def flush(self, timeout_s: float | None = None) -> None:
        self.inner.flush(timeout_s)

    def close(self) -> None:
        self.inner.close()


class Guarded:
    """A worker loop that survives a refused commit and a shutdown in the middle of a step.

    Anything else (a lost producer record, a bug) still ends the process, so the records
    not yet committed are delivered again after the restart.
    """

    def __init__(self, stage: str, worker: Any, on_start: Callable[[], object] | None = None) -> None:
        self.stage = stage
        self.worker = worker
        self.on_start = on_start
        self._counted = 0
        self._seen: dict[str, int] = {}

    @property
    def bus_connected(self) -> bool:
        return bool(getattr(self.worker, "bus_connected", True))

    def start(self) -> None:
        self.worker.start()
        if self.on_start is not None:
            try:
                self.on_start()
            except Interrupted:
                logger.info("%s: stopped while starting", self.stage)

    def step(self, timeout_s: float = 1.0) -> int:
        try:
            n: int = self.worker.step(timeout_s)
        except CommitFailedError as exc:
            COMMIT_FAILURES.inc()
            logger.warning("%s: %s", self.stage, exc)
            n = 0
        except Interrupted:
            logger.info("%s: stopping; the current batch is left uncommitted and will be delivered again", self.stage)
            return 0
        finally:
            self._count()
        return n

    def _count(self) -> None:
        processed = int(getattr(self.worker, "processed", 0))
        if processed > self._counted:
            CONSUMED.labels(self.stage).inc(processed - self._counted)
            self._counted = processed
        consumer = getattr(self.worker, "consumer", None)
        for key, now, counter in (
            ("commit", getattr(self.worker, "commit_failures", 0), COMMIT_FAILURES),
            ("lost", getattr(consumer, "partitions_lost", 0), PARTITIONS_LOST),
            ("dead", getattr(self.worker, "dead_lettered", 0), DEAD_LETTERED.labels(self.stage)),
            ("retry", getattr(self.worker, "transient_failures", 0), HANDLING_RETRIES.labels(self.stage)),
        ):
            now = int(now)
            if now > self._seen.get(key, 0):
                counter.inc(now - self._seen.get(key, 0))
                self._seen[key] = now

    def drain(self) -> None:
        drain = getattr(self.worker, "drain", None)
        if drain is not None:
            try:
                drain()
            except CommitFailedError as exc:
                logger.warning("%s: final commit refused: %s", self.stage, exc)
            except BusError as exc:
                logger.warning("%s: could not finish in-flight work, it will be delivered again: %s", self.stage, exc)
            self._count()

    def close(self) -> None:
        self.worker.close()
