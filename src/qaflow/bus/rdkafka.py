"""The confluent-kafka (librdkafka) clients of a ``kafka://`` bus (``QAFLOW_KAFKA_CLIENT=confluent-kafka``).

:class:`~qaflow.bus.kafka.KafkaBus` hands its calls here when that client is chosen. The
constructor only stores the configuration (confluent_kafka is imported by the calls that need
it); the configuration comes from the same :class:`BackendSettings` fields as kafka-python's,
in librdkafka's names (:mod:`qaflow.bus.rdkafka_config`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from qaflow.bus import rdkafka_config as conf
from qaflow.bus.base import Record
from qaflow.core.settings import BackendSettings
from qaflow.core.topics import TopicSpec

if TYPE_CHECKING:
    from qaflow.bus.rdkafka_consumer import RdKafkaConsumer
    from qaflow.bus.rdkafka_producer import RdKafkaProducer


class RdKafkaClients:
    def __init__(self, servers: Sequence[str], settings: BackendSettings, producer_options: Mapping[str, Any],
                 consumer_options: Mapping[str, Any]) -> None:
        from qaflow.bus.kafka import FETCH_MAX_WAIT_MS, FETCH_MIN_BYTES

        self.settings = settings
        self.common = conf.common_conf(servers, settings)
        self.max_block_ms = int(producer_options.get("max_block_ms", settings.kafka_max_block_ms))
        self.producer_conf = {**conf.producer_conf(settings), **conf.translate(producer_options)}
        self.consumer_conf = {**conf.consumer_conf(settings, FETCH_MIN_BYTES, FETCH_MAX_WAIT_MS),
                              **conf.translate(consumer_options)}

    def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        from qaflow.bus.rdkafka_admin import create_topics

        create_topics(self.common, specs)

    def end_offsets(self, topic: str) -> list[int]:
        from qaflow.bus.rdkafka_admin import end_offsets

        return end_offsets(self.common, topic)

    def read_since(self, topics: Sequence[str], since_ms: int, until_ms: int | None = None) -> Iterator[Record]:
        from qaflow.bus.rdkafka_tail import read_since

        return read_since(self.common, topics, since_ms, until_ms,
                          timeout_s=self.settings.kafka_request_timeout_ms / 1000)

    def producer(self, client_id: str) -> RdKafkaProducer:
        from qaflow.bus.rdkafka_producer import RdKafkaProducer

        return RdKafkaProducer({**self.common, "client.id": client_id, **self.producer_conf}, self.max_block_ms)

    def consumer(self, group: str, topics: Sequence[str], client_id: str) -> RdKafkaConsumer:
        from qaflow.bus.rdkafka_consumer import RdKafkaConsumer

        return RdKafkaConsumer({**self.common, "client.id": client_id, **self.consumer_conf}, group, topics)
