"""What both Kafka consumers (kafka-python, confluent-kafka) share about commits: the commit's
metadata (its wall-clock time), the revoke hook's type, and the errors a commit raises.

A commit that the group refuses (it rebalanced, or evicted the member), or that names
partitions this consumer no longer owns, is :class:`CommitFailedError` with ``retriable =
True``: the records behind it are delivered again to the partitions' owner.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from qaflow.core.errors import CommitFailedError
from qaflow.core.offsets import TopicPartition as Tp

RevokeHook = Callable[[set[Tp]], Mapping[Tp, int]]


def commit_stamp() -> str:
    """A commit's metadata: its wall-clock time, in ms since the epoch."""
    return str(int(time.time() * 1000))


def stamp_ms(metadata: str | None) -> int | None:
    """The time a commit's metadata carries (:func:`commit_stamp`), or None (another client's commit)."""
    return int(metadata) if metadata and metadata.isdigit() else None


def rebalanced(group: str, offsets: Mapping[Tp, int], reason: object) -> CommitFailedError:
    msg = (f"group {group}: commit of {sorted(offsets.items())} refused, the group rebalanced ({reason}); "
           "these records will be delivered again")
    return CommitFailedError(msg, retriable=True)


def failed(group: str, offsets: Mapping[Tp, int], error: object, *, retriable: bool) -> CommitFailedError:
    return CommitFailedError(f"group {group}: commit of {sorted(offsets.items())} failed: {error}",
                             retriable=retriable)


def revoked_before(group: str, partitions: list[Tp]) -> CommitFailedError:
    msg = (f"group {group}: partitions {partitions} were revoked before their commit; "
           "their new owner will deliver these records again")
    return CommitFailedError(msg, retriable=True)
