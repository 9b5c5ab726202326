"""The api's connections (store, cache, producer), opened once per process, in the background.

Never at import and never in the gunicorn master: each worker connects after the fork.
A request never waits long for a connection: it starts one in the background when none
is open or opening, waits up to :data:`START_WAIT_S` for it, and otherwise gets a 503 with
Retry-After. A failed start is not remembered; the next request (or /readyz) tries again,
so an api that came up before Postgres or Kafka heals by itself.

Readiness answers at once from what is known (``ok``, ``connecting``, or the type of the
last failure); the full error text, which may name internal hosts, goes to the log only.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from qaflow.bus import open_bus
from qaflow.bus.base import Bus
from qaflow.bus.kafka import parse_url
from qaflow.cache import open_cache
from qaflow.core import topics
from qaflow.core.settings import ApiSettings
from qaflow.core.topology import API
from qaflow.pipeline.submit import Submitter
from qaflow.services.api.enqueue import BoundedProducer, BrokerProbe
from qaflow.services.api.metrics import MeteredCache
from qaflow.services.api.submit import ApiSubmitter
from qaflow.services.web.app import Unavailable
from qaflow.store import open_store
from qaflow.store.base import Store
from qaflow.store.postgres import sized_url

logger = logging.getLogger(__name__)

PROBE_ID = "0" * 32  # a well-formed id no question has (readiness query)
START_WAIT_S = 0.5  # longest a request or /readyz waits for connections being opened
SEND_BLOCK_MS = 500  # longest a send waits for topic metadata (QAFLOW_KAFKA_MAX_BLOCK_MS caps it too)
POOL_SIZE = 8  # PostgreSQL connections per process when nothing says how many requests run at once
MAX_POOL_SIZE = 16  # per process, whatever the concurrency: requests beyond it wait for a connection
# A POST waits for its own record (wait_delivered); any linger only added itself to the median at 500/s
# (docs/performance.md, "Session 3": p99 7-16 ms with 0 against 9-20 ms with 2, on a quiet machine).
LINGER_MS = 0


class ApiBackends:
    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._submitter: Submitter | None = None
        self._producer: BoundedProducer | None = None
        self._bus: Bus | None = None
        self._starting: threading.Event | None = None  # set when the start in progress ends
        self._start_error: BaseException | None = None
        self._closed = False
        self.pool_size = POOL_SIZE

    def set_concurrency(self, requests: int) -> None:
        """Size the PostgreSQL pool for ``requests`` handled at once (gunicorn's threads), at most
        :data:`MAX_POOL_SIZE`; call before the first connection. The connections open at warm-up and
        are kept (see :mod:`qaflow.store.postgres`); ``pool_min``/``pool_max`` in the store URL win."""
        self.pool_size = max(1, min(requests, MAX_POOL_SIZE))

    @property
    def submitter(self) -> Submitter:
        submitter = self._connected(START_WAIT_S)
        if submitter is None:
            raise Unavailable("store and message bus", self._why_not())
        return submitter

    @property
    def store(self) -> Store:
        return self.submitter.store

    def _connected(self, wait_s: float) -> Submitter | None:
        """The submitter, once started; else starts one in the background and waits ``wait_s`` for it."""
        if self._submitter is not None:
            return self._submitter
        with self._lock:
            if self._submitter is not None:
                return self._submitter
            done = self._starting
            if done is None:
                done = self._starting = threading.Event()
                threading.Thread(target=self._start_in_background, args=(done,), name="api-connect",
                                 daemon=True).start()
        done.wait(wait_s)
        return self._submitter

    def _start_in_background(self, done: threading.Event) -> None:
        try:
            submitter = self._start()
        except Exception as exc:
            logger.warning("api could not connect (will retry on demand): %s", exc)
            with self._lock:
                self._start_error, self._starting = exc, None
        else:
            with self._lock:
                closed = self._closed
                if not closed:
                    self._submitter, self._start_error, self._starting = submitter, None, None
            if closed:  # the worker is exiting: do not leave these connections open
                for resource in (submitter.producer, submitter.cache, submitter.store, self._bus):
                    _close_quietly(resource)
        finally:
            done.set()

    def _start(self) -> Submitter:
        s = self.settings
        opened: list[Any] = []
        try:
            store = open_store(sized_url(s.store_url, self.pool_size))
            store.start()
            opened.append(store)
            cache = MeteredCache(open_cache(s.cache_url))
            cache.start()
            opened.append(cache)
            # A send waits for broker metadata briefly: a request is not the place to wait for a broker.
            max_block_ms = min(s.kafka_max_block_ms, SEND_BLOCK_MS)
            bus = open_bus(s.bus_url, s.model_copy(update={"kafka_max_block_ms": max_block_ms}))
            bus.start()
            opened.append(bus)
            bus.ensure_topics([topics.TopicSpec(t, s.kafka_partitions, s.kafka_retention_ms) for t in API.outputs])
            probe = BrokerProbe(parse_url(s.bus_url)) if s.bus_url.startswith("kafka://") else None
            inner = bus.producer("qaflow-api")
            if s.bus_url.startswith("kafka://"):
                kafka_producer = getattr(inner, "inner", inner)  # under a PrefixedProducer when topics are prefixed
                set_linger_ms = getattr(kafka_producer, "set_linger_ms", None)  # either Kafka client's producer
                if set_linger_ms is not None:
                    set_linger_ms(LINGER_MS)
            producer = BoundedProducer(inner, s.enqueue_timeout_s, probe)
            producer.start()
        except Exception:
            for resource in reversed(opened):
                _close_quietly(resource)
            raise
        self._bus, self._producer = bus, producer
        logger.info("api connected: store %s, cache %s, bus %s", _scheme(s.store_url), _scheme(s.cache_url),
                    _scheme(s.bus_url))
        return ApiSubmitter(store, cache, producer, s.cache_ttl_s)

    def _why_not(self) -> str:
        error = self._start_error
        return "connecting" if error is None else f"not connected ({type(error).__name__}; see the server log)"

    # --- Runtime (see qaflow.services.web.app) ---

    def warm_up(self) -> None:
        """Connect now and wait for it; raises the start's error (gunicorn's post_worker_init, tests)."""
        while self._connected(1.0) is None:
            if self._start_error is not None and self._starting is None:
                raise self._start_error
            time.sleep(0.01)

    def ready(self) -> dict[str, str]:
        submitter = self._connected(START_WAIT_S)
        if submitter is None:
            return {"store": self._why_not(), "bus": self._why_not()}
        checks = {"store": "ok", "bus": self._producer.health if self._producer is not None else "ok"}
        try:
            submitter.store.status(PROBE_ID)
        except Exception as exc:
            logger.warning("readiness: store check failed: %s", exc)
            checks["store"] = f"unavailable ({type(exc).__name__}; see the server log)"
        return checks

    def close(self) -> None:
        with self._lock:
            self._closed = True
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
