"""QAFLOW_KAFKA_CLIENT: which library a kafka:// bus uses, and librdkafka's configuration for it."""

import pytest
from pydantic import SecretStr

from qaflow.bus.kafka import KafkaBus
from qaflow.bus.rdkafka_config import security_conf, translate
from qaflow.core.errors import ConfigError
from qaflow.core.settings import BackendSettings, EmbeddedSettings, load


def test_confluent_kafka_is_the_default_and_kafka_python_is_chosen_by_the_variable() -> None:
    assert load(EmbeddedSettings, {}).kafka_client == "confluent-kafka"
    assert KafkaBus("kafka://k:9092").rdkafka is not None
    s = load(EmbeddedSettings, {"QAFLOW_KAFKA_CLIENT": "kafka-python", "QAFLOW_BUS_URL": "kafka://k:9092"})
    assert KafkaBus(s.bus_url, s).rdkafka is None


def test_confluent_kafka_takes_the_servers_and_the_settings() -> None:
    s = load(EmbeddedSettings, {"QAFLOW_KAFKA_CLIENT": "confluent-kafka", "QAFLOW_BUS_URL": "kafka://a:1,b:2",
                                "QAFLOW_KAFKA_REQUEST_TIMEOUT_MS": "7000"})
    assert s.kafka_client == "confluent-kafka"
    bus = KafkaBus(s.bus_url, s)
    assert bus.rdkafka is not None
    assert bus.rdkafka.common == {"bootstrap.servers": "a:1,b:2", "security.protocol": "PLAINTEXT"}
    assert bus.rdkafka.producer_conf["request.timeout.ms"] == 7000


def test_an_unknown_client_fails_naming_the_variable_and_the_choices() -> None:
    with pytest.raises(ConfigError) as err:
        load(EmbeddedSettings, {"QAFLOW_KAFKA_CLIENT": "aiokafka"})
    assert "QAFLOW_KAFKA_CLIENT: Input should be 'kafka-python' or 'confluent-kafka'" in str(err.value)


def test_kafka_python_option_names_become_librdkafka_names() -> None:
    assert translate({"linger_ms": 0, "max_request_size": 4 << 20, "session_timeout_ms": 6000,
                      "fetch_max_wait_ms": 100, "metadata_max_age_ms": 10_000, "max_poll_records": 5,
                      "max_block_ms": 100}) == {
        "linger.ms": 0, "message.max.bytes": 4 << 20, "session.timeout.ms": 6000, "fetch.wait.max.ms": 100,
        "topic.metadata.refresh.interval.ms": 10_000,
    }


def test_sasl_settings_map_to_librdkafka_properties() -> None:
    s = BackendSettings.model_construct(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                                        kafka_username="qa", kafka_password=SecretStr("pw"))
    assert security_conf(s) == {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
                                "sasl.username": "qa", "sasl.password": "pw"}
