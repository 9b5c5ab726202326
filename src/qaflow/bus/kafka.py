"""``kafka://host:port[,host:port]``: the bus on Apache Kafka, through confluent-kafka
(librdkafka, the default: the ``rdkafka_*`` modules, :class:`qaflow.bus.rdkafka.RdKafkaClients`)
or, with ``QAFLOW_KAFKA_CLIENT=kafka-python``, through kafka-python. Both honour the same contract
(tests/contract/test_bus_contract.py runs on each).

The client package is imported lazily (``start()``, ``producer()``, ``consumer()``), so
this module loads without it and a missing extra fails with the exact install command.

Tuning that tests need (short group sessions) goes through ``producer_options`` /
``consumer_options``; everything a deployment sets comes from :class:`BackendSettings`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from qaflow.bus.base import Record
from qaflow.core.errors import ConfigError, MissingExtraError
from qaflow.core.settings import BackendSettings
from qaflow.core.topics import TopicSpec

if TYPE_CHECKING:
    from qaflow.bus.kafka_consumer import KafkaBusConsumer
    from qaflow.bus.kafka_producer import KafkaBusProducer
    from qaflow.bus.rdkafka import RdKafkaClients
    from qaflow.bus.rdkafka_consumer import RdKafkaConsumer
    from qaflow.bus.rdkafka_producer import RdKafkaProducer

DEFAULT_PORT = 9092
# Consumer fetches (kafka-python's defaults: 1 byte, 500 ms). A question record is about 0.5-1 KB.
FETCH_MIN_BYTES = 64 * 1024
FETCH_MAX_WAIT_MS = 100  # 20 ms made every idle consumer fetch 50 times a second


def require_kafka(client: str = "kafka-python") -> None:
    """Fail with the exact install command when the chosen client library is missing."""
    try:
        importlib.import_module("confluent_kafka" if client == "confluent-kafka" else "kafka")
    except ImportError as exc:
        raise MissingExtraError(client, "kafka") from exc


def parse_url(url: str) -> list[str]:
    """``kafka://a:9092,b:9092`` -> ``["a:9092", "b:9092"]`` (port 9092 when omitted)."""
    if not url.startswith("kafka://"):
        msg = f"QAFLOW_BUS_URL: expected kafka://host:port[,host:port], got {url!r}"
        raise ConfigError(msg)
    servers = []
    for part in url.removeprefix("kafka://").rstrip("/").split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep:
            host, port = part.strip(), str(DEFAULT_PORT)
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            msg = f"QAFLOW_BUS_URL: bad broker address {part!r} in {url!r} (expected host:port)"
            raise ConfigError(msg)
        servers.append(f"{host}:{port}")
    return servers


def security_config(settings: BackendSettings) -> dict[str, Any]:
    """kafka-python security options; SASL (SCRAM by default) for the SASL_* protocols."""
    protocol = settings.kafka_security_protocol
    config: dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL_"):
        # The settings already checked the mechanism and that the credentials are there.
        assert settings.kafka_password is not None
        config.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_username,
            sasl_plain_password=settings.kafka_password.get_secret_value(),
        )
    return config


class KafkaBus:
    def __init__(
        self,
        url: str,
        settings: BackendSettings | None = None,
        *,
        producer_options: Mapping[str, Any] | None = None,
        consumer_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = url
        # Without settings: the defaults, not the environment (read only by core.settings.load).
        self.settings = settings or BackendSettings.model_construct(bus_url=url)
        self.servers = parse_url(url)
        self._common = {"bootstrap_servers": self.servers, **security_config(self.settings)}
        self.producer_options = dict(producer_options or {})
        self.consumer_options = dict(consumer_options or {})
        self.rdkafka: RdKafkaClients | None = None
        if self.settings.kafka_client == "confluent-kafka":
            from qaflow.bus.rdkafka import RdKafkaClients  # imports confluent_kafka only when used

            self.rdkafka = RdKafkaClients(self.servers, self.settings, self.producer_options, self.consumer_options)

    def start(self) -> None:
        require_kafka(self.settings.kafka_client)

    def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create the missing topics (partitions, ``retention.ms``); existing ones are left as they are."""
        if not self.settings.kafka_create_topics or not specs:
            return
        if self.rdkafka is not None:
            return self.rdkafka.ensure_topics(specs)
        require_kafka()
        from qaflow.bus.kafka_admin import create_topics

        create_topics(self._common, specs)

    def end_offsets(self, topic: str) -> list[int]:
        """The next offset of each partition of ``topic`` (tests, lag)."""
        if self.rdkafka is not None:
            return self.rdkafka.end_offsets(topic)
        require_kafka()
        from qaflow.bus.kafka_admin import end_offsets

        return end_offsets(self._common, topic)

    def read_since(self, topics: Sequence[str], since_ms: int, until_ms: int | None = None) -> Iterator[Record]:
        """The records of ``topics`` from the first stamped at or after ``since_ms`` (ms since the
        epoch) to the ends as the read began, or to the first stamped after ``until_ms``
        (:func:`qaflow.bus.kafka_tail.read_since`, :func:`qaflow.bus.rdkafka_tail.read_since`)."""
        if self.rdkafka is not None:
            return self.rdkafka.read_since(topics, since_ms, until_ms)
        require_kafka()
        from qaflow.bus.kafka_tail import read_since

        return read_since(self._common, topics, since_ms, until_ms,
                          timeout_s=self.settings.kafka_request_timeout_ms / 1000)

    def producer(self, client_id: str = "qaflow") -> KafkaBusProducer | RdKafkaProducer:
        if self.rdkafka is not None:
            return self.rdkafka.producer(client_id)
        require_kafka()
        from qaflow.bus.kafka_producer import KafkaBusProducer

        bounds = {
            "max_block_ms": self.settings.kafka_max_block_ms,
            "request_timeout_ms": self.settings.kafka_request_timeout_ms,
            "delivery_timeout_ms": self.settings.kafka_delivery_timeout_ms,
        }
        return KafkaBusProducer({**self._common, "client_id": client_id, **bounds, **self.producer_options})

    def consumer(self, group: str, topics: Sequence[str],
                 client_id: str = "qaflow") -> KafkaBusConsumer | RdKafkaConsumer:
        if self.rdkafka is not None:
            return self.rdkafka.consumer(group, topics, client_id)
        require_kafka()
        from qaflow.bus.kafka_consumer import KafkaBusConsumer

        group_timing = {
            "session_timeout_ms": self.settings.kafka_session_timeout_ms,
            "heartbeat_interval_ms": max(500, self.settings.kafka_session_timeout_ms // 4),
            "max_poll_interval_ms": self.settings.kafka_max_poll_interval_ms,
        }
        # A group whose leader saw no partitions of a subscribed topic yet (just created, metadata not
        # yet everywhere) assigns nothing until a metadata refresh shows them; kafka-python's default
        # refresh is every 5 min, longer than a stall may last. Refresh every 10 s instead.
        # A busy stage takes big fetches instead of one per record that arrived (the broker answers
        # once FETCH_MIN_BYTES are there); idle, a record waits at most FETCH_MAX_WAIT_MS more.
        fetching = {"fetch_min_bytes": FETCH_MIN_BYTES, "fetch_max_wait_ms": FETCH_MAX_WAIT_MS}
        config = {**self._common, "client_id": client_id, **group_timing, "metadata_max_age_ms": 10_000,
                  **fetching, **self.consumer_options}
        return KafkaBusConsumer(config, group, topics)

    def close(self) -> None:
        pass  # producers and consumers own their connections
