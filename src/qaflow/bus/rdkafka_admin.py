"""Topic creation and offset look-ups with confluent-kafka's ``AdminClient`` (short-lived clients),
as :mod:`qaflow.bus.kafka_admin` does with kafka-python's."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from qaflow.core.errors import BusError
from qaflow.core.topics import TopicSpec

logger = logging.getLogger(__name__)

ADMIN_TIMEOUT_S = 30.0
WAIT_STEP_S = 0.1


def _admin(common: Mapping[str, Any]) -> AdminClient:
    return AdminClient({**common, "client.id": "qaflow-admin"})


def _error(exc: BaseException) -> KafkaError | None:
    arg = exc.args[0] if exc.args else None
    return arg if isinstance(arg, KafkaError) else None


def create_topics(common: Mapping[str, Any], specs: Sequence[TopicSpec]) -> None:
    """Create what is missing (partitions, ``retention.ms``) and wait until every partition has a
    leader. Idempotent: several processes may race here; ``TOPIC_ALREADY_EXISTS`` counts as success.
    Errors: :class:`BusError` (retriable as librdkafka says; a broker that does not answer in
    ``ADMIN_TIMEOUT_S`` is retriable)."""
    client = _admin(common)
    try:
        existing = set(client.list_topics(timeout=ADMIN_TIMEOUT_S).topics)
    except KafkaException as exc:
        msg = f"listing topics failed: {exc}"
        raise BusError(msg, retriable=True) from exc
    wanted = {s.name: s for s in specs if s.name not in existing}
    if not wanted:
        return
    request = [NewTopic(s.name, num_partitions=s.partitions, config={"retention.ms": str(s.retention_ms)})
               for s in wanted.values()]
    for name, future in client.create_topics(request, operation_timeout=ADMIN_TIMEOUT_S,
                                             request_timeout=ADMIN_TIMEOUT_S).items():
        try:
            future.result()
            logger.info("created topic %s (%d partitions)", name, wanted[name].partitions)
        except KafkaException as exc:
            error = _error(exc)
            if error is not None and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            msg = f"could not create topic {name}: {exc}"
            raise BusError(msg, retriable=error is not None and error.retriable()) from exc
    _wait_for(client, wanted)


def _wait_for(client: AdminClient, wanted: Mapping[str, TopicSpec]) -> None:
    deadline = time.monotonic() + ADMIN_TIMEOUT_S
    while True:
        topics = client.list_topics(timeout=ADMIN_TIMEOUT_S).topics
        missing = [
            name for name, spec in wanted.items()
            if name not in topics or topics[name].error is not None
            or len(topics[name].partitions) < spec.partitions
            or any(p.leader < 0 for p in topics[name].partitions.values())
        ]
        if not missing:
            return
        if time.monotonic() > deadline:
            msg = f"topics {sorted(missing)} not ready within {ADMIN_TIMEOUT_S}s"
            raise BusError(msg, retriable=True)
        time.sleep(WAIT_STEP_S)


def end_offsets(common: Mapping[str, Any], topic: str) -> list[int]:
    """The next offset of each partition of ``topic``, by partition number. Errors: :class:`BusError`
    (an unknown topic is not retriable)."""
    client = _admin(common)
    described = client.list_topics(topic, timeout=ADMIN_TIMEOUT_S).topics.get(topic)
    if described is None or described.error is not None or not described.partitions:
        msg = f"unknown topic {topic}"
        raise BusError(msg)
    # The high watermarks (ListOffsets, latest) through a group-less consumer that joins nothing.
    consumer = Consumer({**common, "group.id": "qaflow-admin", "client.id": "qaflow-admin"})
    try:
        return [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=ADMIN_TIMEOUT_S)[1]
                for p in sorted(described.partitions)]
    except KafkaException as exc:
        msg = f"end offsets of {topic}: {exc}"
        raise BusError(msg, retriable=True) from exc
    finally:
        consumer.close()
