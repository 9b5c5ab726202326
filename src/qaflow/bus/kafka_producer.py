"""A kafka-python producer behind the bus ``Producer`` seam.

Durability: ``acks="all"`` and the idempotent producer (kafka-python >= 2.1 accepts
``enable_idempotence``; 3.x enables it by default, and setting it explicitly makes a
conflicting option an error instead of a silent downgrade). ``send`` is asynchronous and
keeps each record's future (per thread); two ways to wait for them, both raising
:class:`DeliveryError` if any of the caller's records failed, so a caller never commits past a
lost record:

- ``flush`` (the bus seam's): makes every buffered batch ready at once (kafka-python's
  ``KafkaProducer.flush``) and waits until the whole producer is drained. For a caller that
  sends many records and then waits (a worker's publish: one thread, a poll's worth of
  records): nothing waits for ``linger_ms``.
- ``wait_delivered``: waits only for the records *this thread* sent, without forcing anything
  out: they leave when the sender thread gets to them (after ``linger_ms``: the api sets 0),
  with whatever other threads added meanwhile; while one produce request is in flight, the
  next records gather for the next one. For many concurrent callers with one record each
  (the api's request greenlets): no request waits for another's records. Before (issue 13),
  each request's ``flush`` made every batch ready at once and waited until the whole
  producer was drained, other requests' records included. ``linger_ms`` 0 rather than 2 or
  5: measured side by side at 500 POSTs/s, any linger only added itself to the median
  (docs/performance.md, "Session 3").

kafka-python's idempotent producer treats a failed batch as fatal (later sends are
aborted too), so after a failure the underlying client is replaced by a fresh one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import kafka.errors as kerrors
from kafka import KafkaProducer

from qaflow.bus.delivery import ThreadRecords, not_delivered, unacknowledged
from qaflow.core.errors import DeliveryError

DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 5,  # the api sets 0 (set_linger_ms): measured best for it, docs/performance.md "Session 3"
    # Time bounds; KafkaBus passes QAFLOW_KAFKA_MAX_BLOCK_MS / _REQUEST_TIMEOUT_MS / _DELIVERY_TIMEOUT_MS.
    "max_block_ms": 30_000,  # send() blocks this long at most for metadata or buffer space
    "request_timeout_ms": 15_000,
    "delivery_timeout_ms": 60_000,
}


class KafkaBusProducer:
    """Thread-safe: several threads (the api's request threads) may share one producer.

    Each thread's ``flush`` judges only the records that thread sent, so one caller's failed
    record is never blamed on, or hidden from, another.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = {**DEFAULTS, **config}
        # flush() without a timeout waits at most as long as a record may take to be delivered
        self.flush_timeout_s = self.config["delivery_timeout_ms"] / 1000 + 5
        self._producer: KafkaProducer | None = None
        self._records: ThreadRecords[Any] = ThreadRecords(lambda sent: sent[2].succeeded())
        self._lock = threading.Lock()

    def set_linger_ms(self, linger_ms: int) -> None:
        """Before :meth:`start`: how long kafka-python waits to fill a batch (default 5 ms, which a
        worker's ``flush`` skips anyway). The api sets 0 for its ``wait_delivered`` callers."""
        if self._producer is not None:
            msg = "set_linger_ms() after start()"
            raise RuntimeError(msg)
        self.config["linger_ms"] = linger_ms

    def start(self) -> None:
        with self._lock:
            if self._producer is None:
                self._producer = KafkaProducer(**self.config)

    @property
    def client(self) -> KafkaProducer:
        producer = self._producer
        if producer is None:
            msg = "KafkaBusProducer.start() was not called"
            raise RuntimeError(msg)
        return producer

    def send(self, topic: str, key: str | None, value: bytes) -> None:
        try:
            future = self.client.send(topic, value=value, key=None if key is None else key.encode("utf-8"))
        except kerrors.KafkaError as exc:
            msg = f"send to {topic} (key {key}) failed: {exc}"
            raise DeliveryError(msg, retriable=bool(getattr(exc, "retriable", False))) from exc
        self._records.add((topic, key, future))

    def flush(self, timeout_s: float | None = None) -> None:
        """Send every buffered record now and wait for all of them; raise if any of this thread's failed."""
        pending = self._records.take()
        producer = self.client
        if timeout_s is None:
            timeout_s = self.flush_timeout_s
        try:
            producer.flush(timeout=timeout_s)
        except kerrors.KafkaTimeoutError as exc:
            raise unacknowledged(timeout_s, "flush: records") from exc
        self._judge(producer, pending)

    def wait_delivered(self, timeout_s: float | None = None) -> None:
        """Wait (at most ``timeout_s``) for the records this thread sent, letting ``linger_ms`` batch them
        with other threads' records; raise :class:`DeliveryError` if any failed or is not acknowledged in time."""
        pending = self._records.take()
        producer = self.client
        if timeout_s is None:
            timeout_s = self.flush_timeout_s
        deadline = time.monotonic() + timeout_s
        for _, _, future in pending:
            if future.is_done:
                continue
            try:
                future.get(timeout=max(0.0, deadline - time.monotonic()))
            except kerrors.KafkaTimeoutError as exc:
                if future.is_done:  # the record itself timed out (delivery_timeout_ms): judged below
                    continue
                raise unacknowledged(timeout_s) from exc
            except kerrors.KafkaError:
                pass  # judged below, with the others
        self._judge(producer, pending)

    def _judge(self, producer: KafkaProducer, pending: list[Any]) -> None:
        failed = [(t, k, f) for t, k, f in pending if not f.succeeded()]
        if failed:
            topic, key, future = failed[0]
            error = future.exception if future.is_done else "not completed"
            self._replace(producer)
            raise not_delivered(len(failed), len(pending), topic, key, error,
                                retriable=all(f.retriable() for _, _, f in failed))

    def _replace(self, broken: KafkaProducer) -> None:
        """Swap in a fresh client (once, however many threads saw the failure), then close the old one."""
        with self._lock:
            current = self._producer is broken
            if current:
                self._producer = KafkaProducer(**self.config)
        if current:
            broken.close(timeout=5)

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close()
