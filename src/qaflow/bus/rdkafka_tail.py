"""Reading the recent tail of topics without a consumer group (confluent-kafka), as
:mod:`qaflow.bus.kafka_tail` does with kafka-python: every partition is assigned (no group join,
nothing committed), starts at the first offset stamped at or after ``since_ms``
(``offsets_for_times``, the ListOffsets API) and is read up to its end offset as the read began,
or up to the first offset stamped after ``until_ms``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from qaflow.bus.base import Record
from qaflow.core.errors import BusError

logger = logging.getLogger(__name__)

POLL_S = 0.2
MAX_RECORDS = 2000


def read_since(common: Mapping[str, Any], topics: Sequence[str], since_ms: int, until_ms: int | None = None, *,
               timeout_s: float = 60.0) -> Iterator[Record]:
    """As :func:`qaflow.bus.kafka_tail.read_since` (the same records, order and errors), with
    confluent-kafka."""
    # group.id is required by the client but unused: assign() joins no group, nothing is committed.
    consumer = Consumer({**common, "group.id": "qaflow-tail", "client.id": "qaflow-tail",
                         "enable.auto.commit": False, "enable.auto.offset.store": False,
                         "enable.partition.eof": False})
    try:
        yield from _read(consumer, topics, since_ms, until_ms, timeout_s)
    except KafkaException as exc:
        msg = f"reading the tail of {list(topics)} since {since_ms}: {exc}"
        raise BusError(msg, retriable=True) from exc
    finally:
        consumer.close()


def _read(consumer: Consumer, topics: Sequence[str], since_ms: int, until_ms: int | None,
          timeout_s: float) -> Iterator[Record]:
    deadline = time.monotonic() + timeout_s  # for the set-up requests

    def left() -> float:
        return max(0.001, deadline - time.monotonic())

    metadata = consumer.list_topics(timeout=left()).topics
    tps = [TopicPartition(t, p, max(0, since_ms)) for t in topics if t in metadata and metadata[t].error is None
           for p in sorted(metadata[t].partitions)]
    if not tps:
        return
    starts = {(tp.topic, tp.partition): tp.offset for tp in consumer.offsets_for_times(tps, timeout=left())}
    afters: dict[tuple[str, int], int] = {}
    if until_ms is not None:
        bounds = [TopicPartition(tp.topic, tp.partition, until_ms + 1) for tp in tps]
        afters = {(tp.topic, tp.partition): tp.offset for tp in consumer.offsets_for_times(bounds, timeout=left())}
    todo: dict[tuple[str, int], int] = {}
    for tp in tps:
        _, high = consumer.get_watermark_offsets(tp, timeout=left())
        after = afters.get((tp.topic, tp.partition), -1)
        high = after if 0 <= after < high else high
        start = starts.get((tp.topic, tp.partition), -1)
        if 0 <= start < high:
            todo[(tp.topic, tp.partition)] = high
    if not todo:
        return
    consumer.assign([TopicPartition(t, p, starts[(t, p)]) for t, p in todo])
    progress = time.monotonic()
    while todo:
        if time.monotonic() - progress > timeout_s:
            msg = f"reading the tail: no record for {timeout_s:g} s with {len(todo)} partition(s) short"
            raise BusError(msg, retriable=True)
        first = consumer.poll(POLL_S)
        batch = [] if first is None else [first, *consumer.consume(MAX_RECORDS, 0)]
        for m in batch:
            if m.error() is not None:
                raise KafkaException(m.error())
            topic, partition, offset = m.topic(), m.partition(), m.offset()
            assert topic is not None and partition is not None and offset is not None
            end = todo.get((topic, partition))
            if end is not None and offset < end:
                progress = time.monotonic()
                key = m.key()
                yield Record(topic, partition, offset, None if key is None else key.decode("utf-8", "replace"),
                             m.value() or b"", m.timestamp()[1])
        positions = consumer.position([TopicPartition(t, p) for t, p in todo])
        for tp in positions:
            if tp.offset >= 0 and tp.offset >= todo[(tp.topic, tp.partition)]:
                del todo[(tp.topic, tp.partition)]
