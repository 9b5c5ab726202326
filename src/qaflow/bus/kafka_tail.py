"""Reading the recent tail of topics without a consumer group (kafka-python).

:func:`read_since` assigns every partition of the topics to a group-less consumer, starts
each at the first offset whose timestamp is at or after ``since_ms`` (``offsets_for_times``,
the ListOffsets API) and reads up to the end offsets taken when it started (or up to the first
offset stamped after ``until_ms``), so it always ends. It commits nothing and joins no group;
a stage uses it to rebuild what it had emitted before a crash (the score-worker's duplicate
check, :mod:`qaflow.core.score_restore`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import kafka.errors as kerrors
from kafka import KafkaConsumer, TopicPartition

from qaflow.bus.base import Record
from qaflow.core.errors import BusError

logger = logging.getLogger(__name__)

POLL_MS = 200
MAX_RECORDS = 2000


def read_since(common: Mapping[str, Any], topics: Sequence[str], since_ms: int, until_ms: int | None = None, *,
               timeout_s: float = 60.0) -> Iterator[Record]:
    """Every record of ``topics`` from the first stamped at or after ``since_ms`` (ms since the
    epoch) up to the end offsets as they were when the read began, or to the first record
    stamped after ``until_ms``; topics that do not exist are skipped.

    Order: per partition, by offset (partitions interleave). Errors: :class:`BusError`,
    retriable, when the broker does not answer, or no record arrives for ``timeout_s`` while
    some are still due (a long read that makes progress is never cut).
    """
    try:
        consumer = KafkaConsumer(**common, group_id=None, enable_auto_commit=False, client_id="qaflow-tail",
                                 request_timeout_ms=int(timeout_s * 1000) + 1000)
    except kerrors.KafkaError as exc:
        msg = f"reading the tail of {list(topics)}: cannot connect: {exc}"
        raise BusError(msg, retriable=True) from exc
    try:
        yield from _read(consumer, topics, since_ms, until_ms, timeout_s)
    except kerrors.KafkaError as exc:
        msg = f"reading the tail of {list(topics)} since {since_ms}: {type(exc).__name__}: {exc}"
        raise BusError(msg, retriable=True) from exc
    finally:
        consumer.close(autocommit=False)


def _read(consumer: KafkaConsumer, topics: Sequence[str], since_ms: int, until_ms: int | None,
          timeout_s: float) -> Iterator[Record]:
    tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
    if not tps:
        return
    timeout_ms = int(timeout_s * 1000)
    starts = consumer.offsets_for_times({tp: max(0, since_ms) for tp in tps}, timeout_ms=timeout_ms)
    ends = consumer.end_offsets(tps, timeout_ms=timeout_ms)
    if until_ms is not None:
        after = consumer.offsets_for_times({tp: until_ms + 1 for tp in tps}, timeout_ms=timeout_ms)
        ends = {tp: after[tp].offset if after.get(tp) is not None else ends[tp] for tp in tps}
    todo = {tp: ends[tp] for tp in tps if starts.get(tp) is not None and starts[tp].offset < ends[tp]}
    if not todo:
        return
    consumer.assign(list(todo))
    for tp in todo:
        consumer.seek(tp, starts[tp].offset)
    progress = time.monotonic()
    while todo:
        if time.monotonic() - progress > timeout_s:
            msg = f"no record for {timeout_s:g} s with {sum(todo.values())} offsets still due"
            raise kerrors.KafkaTimeoutError(msg)
        for tp, batch in consumer.poll(timeout_ms=POLL_MS, max_records=MAX_RECORDS).items():
            end = todo.get(tp)
            for r in batch:
                if end is not None and r.offset < end:
                    progress = time.monotonic()
                    key = None if r.key is None else r.key.decode("utf-8", "replace")
                    yield Record(r.topic, r.partition, r.offset, key, r.value or b"", r.timestamp)
        for tp in list(todo):
            if consumer.position(tp) >= todo[tp]:
                del todo[tp]
