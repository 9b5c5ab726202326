"""Run one worker loop as a service: probes, SIGTERM, graceful drain, broker outages.

A retriable :class:`~qaflow.core.errors.BusError` out of a step (kafka-python's
``KafkaConnectionError``, ``KafkaTimeoutError``... while the broker restarts) does not end
the process: ``/readyz`` reports ``"bus": "unavailable"``, the loop waits a capped
exponential backoff (cut short by SIGTERM) and steps again; the worker keeps what it had
not published yet and publishes it first (see :mod:`qaflow.pipeline.worker`).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any, Protocol

from qaflow.core.errors import BusError
from qaflow.core.faults import FaultPolicy, describe
from qaflow.services.probes import Probes

logger = logging.getLogger(__name__)



class Steppable(Protocol):
    def start(self) -> None: ...
    def step(self, timeout_s: float = 1.0) -> int: ...
    def close(self) -> None: ...


def install_stop_handlers() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        logger.info("received signal %d, stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def run_worker(
    name: str,
    worker: Steppable,
    probes: Probes,
    stop: threading.Event,
    grace_s: float = 20.0,
    *,
    bus_policy: FaultPolicy | None = None,
    on_bus_error: Any = None,
) -> int:
    """Step ``worker`` until ``stop`` is set; then finish in-flight work within ``grace_s``.

    ``bus_policy`` gives the backoff after a retriable bus error (default: 0.5 s doubling up
    to 30 s); ``on_bus_error`` is called once per error (a metric).
    """
    policy = bus_policy or FaultPolicy()
    probes.start()
    worker.start()
    probes.ready = True
    probes.set_dependency("bus", True)
    probes.add_check("broker", lambda: bool(getattr(worker, "bus_connected", True)))
    logger.info("%s started; probes on port %d", name, probes.port)
    failures, since = 0, 0.0
    try:
        while not stop.is_set():
            try:
                worker.step(0.5)
            except BusError as exc:
                if not exc.retriable:
                    raise
                if not failures:
                    since = time.monotonic()
                failures += 1
                probes.set_dependency("bus", False)
                if on_bus_error is not None:
                    on_bus_error()
                delay = policy.backoff(failures)
                logger.error(
                    "%s: bus unavailable (%s); not ready; retry %d in %.1f s (down for %.0f s)",
                    name, describe(exc), failures, delay, time.monotonic() - since,
                )
                probes.beat()
                stop.wait(delay)
                continue
            if failures:
                logger.warning("%s: bus reachable again after %d retries (%.0f s)", name, failures,
                               time.monotonic() - since)
                failures = 0
                probes.set_dependency("bus", True)
            probes.beat()
    finally:
        probes.ready = False
        drain = getattr(worker, "drain", None)
        if drain is not None:
            deadline = time.monotonic() + grace_s
            finished = threading.Thread(target=drain, daemon=True)
            finished.start()
            finished.join(max(0.0, deadline - time.monotonic()))
            if finished.is_alive():
                logger.warning("%s: in-flight work not finished in %.0f s; it will be re-delivered", name, grace_s)
        worker.close()
        probes.stop()
        logger.info("%s stopped", name)
    return 0
