"""Topic creation and offset look-ups with ``KafkaAdminClient`` (short-lived clients)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import kafka.errors as kerrors
from kafka import KafkaAdminClient, OffsetSpec, TopicPartition

from qaflow.core.errors import BusError
from qaflow.core.topics import TopicSpec

logger = logging.getLogger(__name__)

ADMIN_TIMEOUT_MS = 30_000


@contextmanager
def admin(common: Mapping[str, Any]) -> Iterator[Any]:
    client = KafkaAdminClient(**common, client_id="qaflow-admin", request_timeout_ms=ADMIN_TIMEOUT_MS)
    try:
        yield client
    finally:
        client.close()


def create_topics(common: Mapping[str, Any], specs: Sequence[TopicSpec]) -> None:
    """Create what is missing and wait until it has leaders. Idempotent: several
    processes may race here; ``TopicAlreadyExists`` counts as success."""
    with admin(common) as client:
        existing = set(client.list_topics())
        wanted = {s.name: s for s in specs if s.name not in existing}
        if not wanted:
            return
        request = {
            s.name: {"num_partitions": s.partitions, "configs": {"retention.ms": str(s.retention_ms)}}
            for s in wanted.values()
        }
        reply = client.create_topics(request, timeout_ms=ADMIN_TIMEOUT_MS, raise_errors=False)
        for topic in reply.get("topics", []):
            error = kerrors.for_code(topic.get("error_code", 0))
            if error is kerrors.NoError:
                logger.info("created topic %s (%d partitions)", topic["name"], wanted[topic["name"]].partitions)
            elif error is not kerrors.TopicAlreadyExistsError:
                msg = f"could not create topic {topic['name']}: {error.__name__} {topic.get('error_message') or ''}"
                raise BusError(msg.strip(), retriable=bool(getattr(error, "retriable", False)))
        client.wait_for_topics(list(wanted), timeout_ms=ADMIN_TIMEOUT_MS)


def end_offsets(common: Mapping[str, Any], topic: str) -> list[int]:
    with admin(common) as client:
        described = client.describe_topics([topic])
        if not described or described[0].get("error_code", 0):
            msg = f"unknown topic {topic}"
            raise BusError(msg)
        partitions = sorted(p["partition_index"] for p in described[0]["partitions"])
        specs = {TopicPartition(topic, p): OffsetSpec.LATEST for p in partitions}
        found = client.list_partition_offsets(specs)
        return [found[TopicPartition(topic, p)].offset for p in partitions]
