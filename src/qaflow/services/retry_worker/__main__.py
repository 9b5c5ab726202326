"""``python -m qaflow.services.retry_worker``: the retry heap over Kafka."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge

from qaflow.core import topics
from qaflow.core.settings import RetryWorkerSettings
from qaflow.pipeline.retry_worker import RetryWorker
from qaflow.services import boot
from qaflow.services.logs import configure_logging
from qaflow.services.probes import Probes
from qaflow.services.runner import install_stop_handlers, run_worker

logger = logging.getLogger("qaflow.services.retry_worker")
NAME = "retry-worker"

WAITING = Gauge("qaflow_retry_waiting", "Failed calls held until their delay passes.")
NEXT_DUE = Gauge("qaflow_retry_next_due_seconds", "Seconds until the next held call is due (0 when none).")
PAUSED = Gauge("qaflow_retry_paused", "1 while the partitions are paused (QAFLOW_RETRY_MAX_WAITING reached).")
RELEASED = Counter("qaflow_retry_released_total", "Held calls let go, by outcome.", ["outcome"])


def count_release(topic: str) -> None:
    if topic == topics.QUESTIONS:
        RELEASED.labels("requeued").inc()
    elif topic == topics.DEAD_LETTER:
        RELEASED.labels("dead_letter").inc()


def main() -> int:
    import time

    s = boot.load_settings(RetryWorkerSettings, NAME)
    configure_logging(s.log_format, s.log_level, NAME)
    stop = install_stop_handlers()
    bus = boot.open_worker_bus(s)
    worker = RetryWorker(
        bus.consumer(boot.group_of(s, "qaflow-retry-worker"), list(topics.RETRY_TOPICS), client_id=NAME),
        boot.MeteredProducer(bus.producer(client_id=NAME), count_release),
        s.max_delivery_attempts,
        max_waiting=s.retry_max_waiting,
        policy=boot.fault_policy(s),
        stop=stop,
    )
    WAITING.set_function(lambda: worker.waiting)
    NEXT_DUE.set_function(lambda: max(0.0, (worker.next_due() or time.time()) - time.time()))
    PAUSED.set_function(lambda: 1.0 if getattr(worker, "_paused", False) else 0.0)
    probes = Probes(s.http_port, s.http_host)
    probes.details = {"service": NAME}
    logger.info(
        "holding retries (at most %d in memory); max deliveries %d", s.retry_max_waiting, s.max_delivery_attempts
    )
    try:
        return run_worker(NAME, boot.Guarded("retry", worker), probes, stop, s.shutdown_grace_s,
                          bus_policy=boot.fault_policy(s), on_bus_error=boot.BUS_ERRORS.inc)
    finally:
        bus.close()


if __name__ == "__main__":
    raise SystemExit(main())
