"""How the api enqueues: fail fast when Kafka is unreachable, wait a bounded time when it is slow.

A request must not wait on a broker that is down (issue 10: request threads blocked for
9-23 s), yet a broker that is up but slow to acknowledge must not turn into 503s. The two are
told apart by a TCP connect to the bootstrap servers (at most every :data:`PROBE_TTL_S`,
:data:`PROBE_TIMEOUT_S` each): nobody listening means the broker is down and the submission
is refused before it is sent (503 at once, nothing left to arrive later); otherwise the send
waits up to ``QAFLOW_ENQUEUE_TIMEOUT_S`` for the acknowledgement. Only a request already
waiting when the broker dies waits that long.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from qaflow.bus.base import Producer
from qaflow.core.errors import BusError, DeliveryError

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 0.25  # a TCP connect to a live broker on the same network takes milliseconds
PROBE_TTL_S = 0.5  # a probe's answer is reused this long


class BrokerProbe:
    """``reachable()``: does any bootstrap server accept a TCP connection? Cached for ``ttl_s``."""

    def __init__(self, servers: Sequence[str], timeout_s: float = PROBE_TIMEOUT_S, ttl_s: float = PROBE_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.servers = [_split(s) for s in servers]
        self.timeout_s = timeout_s
        self.ttl_s = ttl_s
        self.clock = clock
        self._lock = threading.Lock()
        self._checked_at = -float("inf")
        self._reachable = True

    def reachable(self) -> bool:
        now = self.clock()
        if now - self._checked_at < self.ttl_s:
            return self._reachable
        with self._lock:
            if self.clock() - self._checked_at >= self.ttl_s:
                self._reachable = any(self._connects(host, port) for host, port in self.servers)
                self._checked_at = self.clock()
            return self._reachable

    def _connects(self, host: str, port: int) -> bool:
        try:
            with socket.create_connection((host, port), timeout=self.timeout_s):
                return True
        except OSError:
            return False


class BoundedProducer:
    """The api's producer: refuses at once while the broker is unreachable, waits at most
    ``timeout_s`` for an acknowledgement otherwise; the outcome feeds readiness.

    A record not acknowledged in time is a retriable :class:`DeliveryError` (503 with
    Retry-After); it may still reach Kafka later, which is safe: the submission was released,
    and a repeat carries the same question id. Errors of the Kafka client itself (while it
    reconnects, say) count as the bus being unavailable, never as a bug.
    """

    def __init__(self, inner: Producer, timeout_s: float, probe: BrokerProbe | None = None) -> None:
        self.inner = inner
        self.timeout_s = timeout_s
        self.probe = probe
        self._failure: str | None = None  # why the last enqueue failed; None after a success

    @property
    def health(self) -> str:
        if self.probe is not None and not self.probe.reachable():
            return "unavailable (broker not reachable)"
        failure = self._failure
        return "ok" if failure is None else f"unavailable (last enqueue failed: {failure}; see the server log)"

    def start(self) -> None:
        self.inner.start()

    def send(self, topic: str, key: str | None, value: bytes) -> None:
        if self.probe is not None and not self.probe.reachable():
            self._failure = "broker not reachable"
            msg = "no Kafka bootstrap server accepts connections"
            raise DeliveryError(msg, retriable=True)
        self._guard(self.inner.send, topic, key, value)

    def flush(self, timeout_s: float | None = None) -> None:
        self._guard(self.inner.flush, self._bound(timeout_s))
        self._failure = None

    def wait_delivered(self, timeout_s: float | None = None) -> None:
        """Wait for this request's records only, without forcing batches out (the inner producer's
        ``wait_delivered``, see :mod:`qaflow.bus.kafka_producer`; its ``flush`` where it has none)."""
        self._guard(getattr(self.inner, "wait_delivered", self.inner.flush), self._bound(timeout_s))
        self._failure = None

    def _bound(self, timeout_s: float | None) -> float:
        return self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s)

    def close(self) -> None:
        self.inner.close()

    def _guard(self, call: Any, *args: Any) -> None:
        try:
            call(*args)
        except BusError as exc:
            self._failure = type(exc).__name__
            raise
        except Exception as exc:
            if type(exc).__module__.split(".")[0] != "kafka":
                raise
            self._failure = type(exc).__name__
            msg = f"Kafka client error: {type(exc).__name__}: {exc}"
            raise DeliveryError(msg, retriable=True) from exc


def _split(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    return host.strip("[]"), int(port)
