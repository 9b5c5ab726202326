"""Run one worker loop as a service: probes, SIGTERM, graceful drain."""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any, Protocol

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
    name: str, worker: Steppable, probes: Probes, stop: threading.Event, grace_s: float = 20.0
) -> int:
    """Step ``worker`` until ``stop`` is set; then finish in-flight work within ``grace_s``."""
    probes.start()
    worker.start()
    probes.ready = True
    logger.info("%s started; probes on port %d", name, probes.port)
    try:
        while not stop.is_set():
            worker.step(0.5)
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
