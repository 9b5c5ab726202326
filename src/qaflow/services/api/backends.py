"""The api's connections (store, cache, producer), opened once per process on first use.

Never at import and never in the gunicorn master: each worker connects after the fork.
A failed start is not remembered; the next request (or /readyz) tries again, so an api
that came up before Postgres or Kafka heals by itself.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from qaflow.bus import open_bus
from qaflow.bus.base import Bus, Producer
from qaflow.cache import open_cache
from qaflow.core import topics
from qaflow.core.settings import ApiSettings
from qaflow.pipeline.submit import Submitter
from qaflow.services.api.metrics import MeteredCache
from qaflow.store import open_store
from qaflow.store.base import Store

logger = logging.getLogger(__name__)

PROBE_ID = "0" * 32  # a well-formed id no question has (readiness query)


class ApiBackends:
    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._submitter: Submitter | None = None
        self._bus: Bus | None = None

    @property
    def submitter(self) -> Submitter:
        if self._submitter is None:
            with self._lock:
                if self._submitter is None:
                    self._submitter = self._start()
        return self._submitter

    @property
    def store(self) -> Store:
        return self.submitter.store

    def _start(self) -> Submitter:
        s = self.settings
        opened: list[Any] = []
        try:
            store = open_store(s.store_url)
            store.start()
            opened.append(store)
            cache = MeteredCache(open_cache(s.cache_url))
            cache.start()
            opened.append(cache)
            bus = open_bus(s.bus_url, s)
            bus.start()
            opened.append(bus)
            bus.ensure_topics([topics.TopicSpec(topics.QUESTIONS, s.kafka_partitions, s.kafka_retention_ms)])
            producer: Producer = bus.producer("qaflow-api")
            producer.start()
        except Exception:
            for resource in reversed(opened):
                _close_quietly(resource)
            raise
        self._bus = bus
        logger.info("api connected: store %s, cache %s, bus %s", _scheme(s.store_url), _scheme(s.cache_url),
                    _scheme(s.bus_url))
        return Submitter(store, cache, producer, s.cache_ttl_s)

    # --- Runtime (see qaflow.services.web.app) ---

    def warm_up(self) -> None:
        _ = self.submitter

    def ready(self) -> dict[str, str]:
        checks = {"store": "ok", "bus": "ok"}
        try:
            submitter = self.submitter
        except Exception as exc:
            return {"store": "not connected", "bus": "not connected", "error": f"{type(exc).__name__}: {exc}"}
        try:
            submitter.store.status(PROBE_ID)
        except Exception as exc:
            checks["store"] = f"{type(exc).__name__}: {exc}"
        return checks

    def close(self) -> None:
        with self._lock:
            submitter, self._submitter = self._submitter, None
            bus, self._bus = self._bus, None
        if submitter is not None:
            for resource in (submitter.producer, submitter.cache, submitter.store):
                _close_quietly(resource)
        if bus is not None:
            _close_quietly(bus)


def _close_quietly(resource: Any) -> None:
    try:
        resource.close()
    except Exception as exc:
        logger.warning("closing %s: %s", type(resource).__name__, exc)


def _scheme(url: str) -> str:
    return url.split("://", 1)[0]  # never the credentials
