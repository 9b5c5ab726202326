"""The storage-writer's own part: the store and cache, the store guard, and its metrics.

Built by :func:`qaflow.services.service.run_service` from :data:`qaflow.core.topology.STORAGE`.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter, Histogram

from qaflow.cache import open_cache
from qaflow.pipeline.storage import StorageStage
from qaflow.pipeline.worker import Decoded, Worker
from qaflow.services.service import Built, ServiceContext
from qaflow.services.storage_writer.guard import StoreGuard
from qaflow.store import open_store

logger = logging.getLogger("qaflow.services.storage_writer")

WRITTEN = Counter("qaflow_storage_written_total", "Rows written (upserted), by kind.", ["kind"])
RESULTS = Counter("qaflow_storage_results_total", "Terminal results written, by status.", ["status"])
BATCH_SECONDS = Histogram("qaflow_storage_batch_seconds", "Time to write one batch (one transaction) and the cache.")


def build(ctx: ServiceContext) -> Built:
    s, probes = ctx.settings, ctx.probes
    store = open_store(s.store_url)
    cache = open_cache(s.cache_url)
    cache.start()
    stage = StorageStage(store, cache, s.cache_ttl_s)

    def set_ready(up: bool) -> None:
        probes.set_dependency("store", up)

    guard = StoreGuard(store, ctx.stop, cap_s=ctx.policy.cap_s, on_wait=probes.beat, on_state=set_ready)

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

    worker = Worker(
        ctx.stage.label,
        ctx.consumer(),
        ctx.raw_producer(),
        write,  # type: ignore[arg-type]
        max_records=s.storage_batch_size,
        inline_dead_letters=True,
        policy=ctx.policy,
        stop=ctx.stop,
    )
    logger.info("writing batches of up to %d records", s.storage_batch_size)
    # Migrations first (waiting out an unreachable store), once the worker started.
    return Built(worker, on_start=lambda: guard.call(lambda: None), closers=(cache, store))
