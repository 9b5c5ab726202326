"""librdkafka configuration for the confluent-kafka clients, built from the same settings as
kafka-python's (pure: no confluent_kafka import, unit-tested).

:class:`~qaflow.bus.kafka.KafkaBus` takes its tuning options (``producer_options`` /
``consumer_options``, used by tests) in kafka-python's names; :func:`translate` renames them to
librdkafka's (its CONFIGURATION.md): mostly ``_`` -> ``.``, with the few that differ in
:data:`RENAMED`. An option librdkafka does not know then fails when the client is built
(``KafkaException``: "No such configuration property"), never silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qaflow.core.settings import BackendSettings

# kafka-python name -> librdkafka name, where the mechanical "_" -> "." does not give it.
RENAMED: dict[str, str] = {
    "max_request_size": "message.max.bytes",
    "fetch_max_wait_ms": "fetch.wait.max.ms",
    # kafka-python's periodic metadata refresh; librdkafka's "metadata.max.age.ms" is a cache age
    "metadata_max_age_ms": "topic.metadata.refresh.interval.ms",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
}
# kafka-python options with no librdkafka counterpart, handled by the bus classes themselves:
# max_poll_records is poll()'s argument; max_block_ms bounds RdKafkaProducer.send's wait for queue
# space (librdkafka's produce() never waits for metadata: a record waits in the queue for it,
# bounded by delivery.timeout.ms).
HANDLED_HERE = frozenset({"max_poll_records", "max_block_ms"})


def translate(options: Mapping[str, Any]) -> dict[str, Any]:
    """kafka-python option names -> librdkafka names, e.g. ``{"linger_ms": 0}`` -> ``{"linger.ms": 0}``;
    :data:`HANDLED_HERE` names are left out. Values pass through (bools and ints are accepted by librdkafka)."""
    return {RENAMED.get(k, k.replace("_", ".")): v for k, v in options.items() if k not in HANDLED_HERE}


def security_conf(settings: BackendSettings) -> dict[str, Any]:
    """librdkafka's security properties from the same fields as :func:`qaflow.bus.kafka.security_config`:
    ``security.protocol``, and for SASL_* ``sasl.mechanism`` / ``sasl.username`` / ``sasl.password``."""
    protocol = settings.kafka_security_protocol
    conf: dict[str, Any] = {"security.protocol": protocol}
    if protocol.startswith("SASL_"):
        assert settings.kafka_password is not None  # checked by BackendSettings
        conf.update({
            "sasl.mechanism": settings.kafka_sasl_mechanism,
            "sasl.username": settings.kafka_username,
            "sasl.password": settings.kafka_password.get_secret_value(),
        })
    return conf


def common_conf(servers: Sequence[str], settings: BackendSettings) -> dict[str, Any]:
    """What every client of one bus shares: the brokers and the security properties."""
    return {"bootstrap.servers": ",".join(servers), **security_conf(settings)}


def producer_conf(settings: BackendSettings) -> dict[str, Any]:
    """The producer's time bounds (QAFLOW_KAFKA_REQUEST_TIMEOUT_MS, _DELIVERY_TIMEOUT_MS) in librdkafka's names;
    QAFLOW_KAFKA_MAX_BLOCK_MS is applied by RdKafkaProducer.send (see :data:`HANDLED_HERE`)."""
    return {
        "request.timeout.ms": settings.kafka_request_timeout_ms,
        "delivery.timeout.ms": settings.kafka_delivery_timeout_ms,
    }


def consumer_conf(settings: BackendSettings, fetch_min_bytes: int, fetch_max_wait_ms: int) -> dict[str, Any]:
    """Group timing (as KafkaBus.consumer gives kafka-python) and the same fetch tuning, in librdkafka's names."""
    return {
        "session.timeout.ms": settings.kafka_session_timeout_ms,
        "heartbeat.interval.ms": max(500, settings.kafka_session_timeout_ms // 4),
        "max.poll.interval.ms": settings.kafka_max_poll_interval_ms,
        "topic.metadata.refresh.interval.ms": 10_000,
        "fetch.min.bytes": fetch_min_bytes,
        "fetch.wait.max.ms": fetch_max_wait_ms,
    }
