"""A confluent-kafka (librdkafka) producer behind the bus ``Producer`` seam.

The same behaviour as :mod:`qaflow.bus.kafka_producer`, on librdkafka:

- durability: ``acks=all`` and ``enable.idempotence``;
- bounded waits: ``request.timeout.ms`` and ``delivery.timeout.ms`` from BackendSettings.
  librdkafka's ``produce`` never waits for metadata (the record waits in the queue for it,
  within ``delivery.timeout.ms``); when the queue is full, ``send`` serves delivery reports and
  tries again for at most ``max_block_ms`` (QAFLOW_KAFKA_MAX_BLOCK_MS), then raises a retriable
  :class:`DeliveryError`;
- ``send`` is asynchronous; each record's delivery report (``on_delivery``, run inside
  ``poll``/``flush`` on whichever thread calls them) is kept per sending thread;
- ``flush`` sends everything now (librdkafka's flush skips ``linger.ms``) and waits for the whole
  producer; ``wait_delivered`` waits only for this thread's records, leaving them to go out
  after ``linger.ms`` with other threads' records. It serves delivery reports with
  non-blocking ``poll(0)`` and sleeps between tries (``time.sleep``, which gevent patches), so
  a waiting greenlet of the api never blocks its worker inside C. Both raise
  :class:`DeliveryError` if any of the caller's records failed (retriable when every failure is).

A fatal error (the idempotent producer's, ``KafkaError.fatal()``) leaves the client unusable:
it is then replaced by a fresh one, as the kafka-python producer does after any failure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka import Producer as RdProducer

from qaflow.bus.delivery import ThreadRecords, not_delivered, unacknowledged
from qaflow.core.errors import DeliveryError

logger = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 5,  # the api sets 0 (set_linger_ms), as with kafka-python
    "request.timeout.ms": 15_000,
    "delivery.timeout.ms": 60_000,
}
WAIT_STEP_S = (0.0005, 0.005)  # first and longest sleep between two poll(0) while waiting


class _Report:
    """One record's delivery report, filled by librdkafka's ``on_delivery`` callback."""

    __slots__ = ("done", "error", "key", "topic")

    def __init__(self, topic: str, key: str | None) -> None:
        self.topic, self.key = topic, key
        self.done = False
        self.error: KafkaError | None = None

    def __call__(self, error: KafkaError | None, _message: Message) -> None:
        self.error, self.done = error, True

    @property
    def failed(self) -> bool:
        return not self.done or self.error is not None


class RdKafkaProducer:
    """Thread-safe: several threads (the api's request threads or greenlets) may share one producer;
    each thread's ``flush``/``wait_delivered`` judges only the records that thread sent."""

    def __init__(self, config: Mapping[str, Any], max_block_ms: int = 10_000) -> None:
        self.config = {**DEFAULTS, **config}
        self.max_block_s = max_block_ms / 1000
        self.flush_timeout_s = int(self.config["delivery.timeout.ms"]) / 1000 + 5
        self._producer: RdProducer | None = None
        self._records: ThreadRecords[_Report] = ThreadRecords(lambda report: not report.failed)
        self._lock = threading.Lock()

    def set_linger_ms(self, linger_ms: int) -> None:
        """Before :meth:`start`: librdkafka's ``linger.ms`` (default 5 here; the api sets 0)."""
        if self._producer is not None:
            msg = "set_linger_ms() after start()"
            raise RuntimeError(msg)
        self.config["linger.ms"] = linger_ms

    def start(self) -> None:
        with self._lock:
            if self._producer is None:
                self._producer = self._new()

    def _new(self) -> RdProducer:
        return RdProducer({**self.config, "error_cb": _log_error, "logger": logger})

    @property
    def client(self) -> RdProducer:
        producer = self._producer
        if producer is None:
            msg = "RdKafkaProducer.start() was not called"
            raise RuntimeError(msg)
        return producer

    def send(self, topic: str, key: str | None, value: bytes) -> None:
        report = _Report(topic, key)
        producer = self.client
        deadline = time.monotonic() + self.max_block_s
        while True:
            try:
                producer.produce(topic, value=value, key=None if key is None else key.encode("utf-8"),
                                 on_delivery=report)
                break
            except BufferError as exc:  # the local queue is full: serve reports, then try again
                if time.monotonic() >= deadline:
                    msg = f"send to {topic} (key {key}): the producer's queue stayed full for {self.max_block_s}s"
                    raise DeliveryError(msg, retriable=True) from exc
                producer.poll(0.05)
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                msg = f"send to {topic} (key {key}) failed: {error}"
                raise DeliveryError(msg, retriable=error.retriable()) from exc
        producer.poll(0)  # serve reports due (cheap), so they do not pile up between waits
        self._records.add(report)

    def flush(self, timeout_s: float | None = None) -> None:
        """Send every queued record now and wait for all of them; raise if any of this thread's failed."""
        pending = self._records.take()
        producer = self.client
        if timeout_s is None:
            timeout_s = self.flush_timeout_s
        if producer.flush(timeout_s) > 0 and any(not r.done for r in pending):
            raise unacknowledged(timeout_s, "flush: records")
        self._judge(producer, pending)

    def wait_delivered(self, timeout_s: float | None = None) -> None:
        """Wait (at most ``timeout_s``) for the records this thread sent, letting ``linger.ms`` batch them
        with other threads' records; raise :class:`DeliveryError` if any failed or is not acknowledged in time."""
        pending = self._records.take()
        producer = self.client
        if timeout_s is None:
            timeout_s = self.flush_timeout_s
        deadline = time.monotonic() + timeout_s
        step = WAIT_STEP_S[0]
        while True:
            producer.poll(0)
            if all(r.done for r in pending):
                break
            if time.monotonic() >= deadline:
                raise unacknowledged(timeout_s)
            time.sleep(step)
            step = min(step * 2, WAIT_STEP_S[1])
        self._judge(producer, pending)

    def _judge(self, producer: RdProducer, pending: list[_Report]) -> None:
        failed = [r for r in pending if r.failed]
        if not failed:
            return
        first = failed[0]
        error = first.error if first.done else "not completed"
        if any(r.error is not None and r.error.fatal() for r in failed):
            self._replace(producer)
        raise not_delivered(len(failed), len(pending), first.topic, first.key, error,
                            retriable=all(r.error is not None and r.error.retriable() for r in failed))

    def _replace(self, broken: RdProducer) -> None:
        """Swap in a fresh client (once, however many threads saw the fatal error)."""
        with self._lock:
            if self._producer is broken:
                self._producer = self._new()
                logger.warning("producer replaced after a fatal error")

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            remaining = producer.flush(self.flush_timeout_s)
            if remaining:
                logger.warning("producer closed with %d record(s) not acknowledged", remaining)


def _log_error(error: KafkaError) -> None:
    """librdkafka's error callback: client-level errors it recovers from itself (broker down...)."""
    if error.fatal():
        logger.error("kafka producer: fatal error: %s", error)
    else:
        logger.warning("kafka producer: %s", error)
