"""What both Kafka producers (kafka-python, confluent-kafka) share: the records each thread
sent and has not waited for yet, and the errors that judge them.

A thread is judged by its own records only: ``flush`` and ``wait_delivered`` take the calling
thread's records (:meth:`ThreadRecords.take`) and raise :class:`DeliveryError` if any of those
failed, however the other threads' records went (tests/contract, "shared by threads").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from qaflow.core.errors import DeliveryError

logger = logging.getLogger(__name__)

T = TypeVar("T")
PRUNE_AT = 10_000  # drop delivered records when this many pile up between two waits of a thread


class ThreadRecords(Generic[T]):
    """Per thread, the handles (futures, delivery reports) of the records it sent since it last
    waited; ``delivered(handle)`` says which may be forgotten early (only successes)."""

    def __init__(self, delivered: Callable[[T], bool]) -> None:
        self._local = threading.local()
        self._delivered = delivered

    def mine(self) -> list[T]:
        pending: list[T] | None = getattr(self._local, "pending", None)
        if pending is None:
            pending = self._local.pending = []
        return pending

    def add(self, handle: T) -> None:
        pending = self.mine()
        pending.append(handle)
        if len(pending) >= PRUNE_AT:
            pending[:] = [h for h in pending if not self._delivered(h)]

    def take(self) -> list[T]:
        """This thread's handles, forgotten here (the caller judges them)."""
        pending, self._local.pending = self.mine(), []
        return pending


def unacknowledged(timeout_s: float, what: str = "records") -> DeliveryError:
    """Retriable: nothing said the records failed, the broker did not answer in ``timeout_s``."""
    return DeliveryError(f"{what} not acknowledged within {timeout_s}s (the broker is unreachable?)", retriable=True)


def not_delivered(failed: int, total: int, topic: str, key: str | None, error: Any, *,
                  retriable: bool) -> DeliveryError:
    """Logs and builds the error for ``failed`` of ``total`` records not delivered, naming the
    first (``topic``, ``key``, ``error``); retriable when every failure was."""
    logger.error("%d record(s) not delivered; first: topic=%s key=%s: %s", failed, topic, key, error)
    msg = f"{failed} of {total} record(s) not delivered; first: topic={topic} key={key}: {error}"
    return DeliveryError(msg, retriable=retriable)
