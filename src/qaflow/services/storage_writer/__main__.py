"""``python -m qaflow.services.storage_writer``: the storage stage over Kafka."""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter, Histogram

from qaflow.cache import open_cache
from qaflow.core import topics
from qaflow.core.settings import StorageWriterSettings
from qaflow.pipeline.storage import StorageStage
from qaflow.pipeline.worker import Decoded, Worker
from qaflow.services import boot
from qaflow.services.logs import configure_logging
from qaflow.services.probes import Probes
from qaflow.services.runner import install_stop_handlers, run_worker
from qaflow.services.storage_writer.guard import StoreGuard
from qaflow.store import open_store

logger = logging.getLogger("qaflow.services.storage_writer")
NAME = "storage-writer"

WRITTEN = Counter("qaflow_storage_written_total", "Rows written (upserted), by kind.", ["kind"])
RESULTS = Counter("qaflow_storage_results_total", "Terminal results written, by status.", ["status"])
BATCH_SECONDS = Histogram("qaflow_storage_batch_seconds", "Time to write one batch (one transaction) and the cache.")


def main() -> int:
    s = boot.load_settings(StorageWriterSettings, NAME)
    configure_logging(s.log_format, s.log_level, NAME)
    stop = install_stop_handlers()
    probes = Probes(s.http_port, s.http_host)
    probes.details = {"service": NAME}
    store = open_store(s.store_url)
    cache = open_cache(s.cache_url)
    cache.start()
    stage = StorageStage(store, cache, s.cache_ttl_s)

    def set_ready(up: bool) -> None:
        probes.set_dependency("store", up)

    policy = boot.fault_policy(s)
    guard = StoreGuard(store, stop, cap_s=policy.cap_s, on_wait=probes.beat, on_state=set_ready)

    def write(batch: list[Decoded]) -> list[object]:
        started = time.perf_counter()
        written = guard.call(stage.handle_batch, [m for _, m in batch])
        BATCH_SECONDS.observe(time.perf_counter() - started)
        WRITTEN.labels("result").inc(len(written.results))
        WRITTEN.labels("attempt").inc(len(written.attempts))
        WRITTEN.labels("dead_letter").inc(len(written.dead_letters))
        WRITTEN.labels("call").inc(len(written.calls))
        for r in written.results:
            RESULTS.labels(r.status.value).inc()
        return []

    bus = boot.open_worker_bus(s)
    worker = Worker(
        "storage",
        bus.consumer(
            boot.group_of(s, "qaflow-storage-writer"),
            [topics.RESULTS, topics.SCORES, topics.DEAD_LETTER, topics.CALLS],
            client_id=NAME,
        ),
        bus.producer(client_id=NAME),
        write,  # type: ignore[arg-type]
        max_records=s.storage_batch_size,
        inline_dead_letters=True,
        policy=policy,
        stop=stop,
    )
    logger.info("writing batches of up to %d records", s.storage_batch_size)
    try:
        looped = boot.Guarded("storage", worker, on_start=lambda: guard.call(lambda: None))  # migrations first
        return run_worker(NAME, looped, probes, stop, s.shutdown_grace_s,
                          bus_policy=policy, on_bus_error=boot.BUS_ERRORS.inc)
    finally:
        cache.close()
        store.close()
        bus.close()


if __name__ == "__main__":
    raise SystemExit(main())
