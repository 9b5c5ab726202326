"""Store writes that wait out an outage instead of crashing.

While the store is unreachable the batch is retried with capped exponential backoff and
its offsets stay uncommitted; the service reports not-ready but stays alive (the probes
keep beating), and says so in the log. On shutdown the batch is abandoned uncommitted, to
be delivered again.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge

from qaflow.services.boot import Interrupted
from qaflow.store.base import Store

logger = logging.getLogger(__name__)
T = TypeVar("T")

UNAVAILABLE = Gauge("qaflow_store_unavailable", "1 while the store cannot be reached.")
RETRIES = Counter("qaflow_store_retries_total", "Store calls retried after a connection failure.")


def transient_errors() -> tuple[type[BaseException], ...]:
    """Errors meaning "the store is unreachable now", as opposed to a bad statement."""
    errors: list[type[BaseException]] = [sqlite3.OperationalError, ConnectionError, TimeoutError]
    try:
        import psycopg2
        import psycopg2.pool
    except ImportError:  # pragma: no cover - depends on the install
        pass
    else:
        errors += [psycopg2.OperationalError, psycopg2.InterfaceError, psycopg2.pool.PoolError]
    return tuple(errors)


class StoreGuard:
    def __init__(
        self,
        store: Store,
        stop: threading.Event,
        *,
        base_s: float = 0.5,
        cap_s: float = 30.0,
        on_wait: Callable[[], None] = lambda: None,
        on_state: Callable[[bool], None] = lambda up: None,
    ) -> None:
        self.store = store
        self.stop = stop
        self.base_s = base_s
        self.cap_s = cap_s
        self.on_wait = on_wait
        self.on_state = on_state
        self.started = False
        self.errors = transient_errors()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        delay, failures, since = self.base_s, 0, time.monotonic()
        while True:
            try:
                if not self.started:
                    self.store.start()
                    self.started = True
                result = fn(*args)
            except self.errors as exc:
                failures += 1
                RETRIES.inc()
                UNAVAILABLE.set(1)
                self.on_state(False)
                logger.error(
                    "store unavailable (%s: %s); offsets not committed; retry %d in %.1f s (down for %.0f s)",
                    type(exc).__name__,
                    str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                    failures,
                    delay,
                    time.monotonic() - since,
                )
                self._sleep(delay)
                delay = min(self.cap_s, delay * 2)
                continue
            if failures:
                logger.warning("store reachable again after %d retries (%.0f s)", failures, time.monotonic() - since)
                UNAVAILABLE.set(0)
                self.on_state(True)
            return result

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.stop.wait(min(left, 1.0)):
                raise Interrupted
            self.on_wait()
        if self.stop.is_set():
            raise Interrupted
