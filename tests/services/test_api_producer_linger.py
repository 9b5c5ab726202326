"""The api's Kafka producer sends without lingering (issue 13, session 3): a POST waits for its own
record (``wait_delivered``), and any ``linger_ms`` only added itself to the median; other
producers (the workers', which flush at once) keep the default."""

from __future__ import annotations

import pytest

from qaflow.bus.kafka import KafkaBus
from qaflow.bus.kafka_producer import DEFAULTS, KafkaBusProducer
from qaflow.bus.rdkafka_producer import RdKafkaProducer
from qaflow.core.settings import ApiSettings
from qaflow.services.api.app import create_app
from qaflow.services.api.backends import LINGER_MS
from qaflow.services.web.app import runtime

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
def test_the_api_producer_does_not_linger(pg_url: str, redis_url: str, kafka_bootstrap: str,
                                          unique_name: str, client: str) -> None:
    settings = ApiSettings(bus_url=f"kafka://{kafka_bootstrap}", store_url=pg_url, cache_url=redis_url,
                           topic_prefix=f"{unique_name}.", kafka_client=client)
    app = create_app(settings)
    backends = runtime(app)
    backends.warm_up()
    try:
        response = app.test_client().post("/v1/questions", json={"title": f"linger [{unique_name}]",
                                                                  "reference_answer": "none"})
        assert response.status_code == 202, response.get_data(as_text=True)
        inner = backends._producer.inner
        kafka_producer = getattr(inner, "inner", inner)
        if client == "kafka-python":
            assert isinstance(kafka_producer, KafkaBusProducer)
            assert kafka_producer.client.config["linger_ms"] == LINGER_MS == 0
        else:
            assert isinstance(kafka_producer, RdKafkaProducer)
            assert kafka_producer.config["linger.ms"] == LINGER_MS == 0
    finally:
        backends.close()
    other = KafkaBus(f"kafka://{kafka_bootstrap}", settings.model_copy(update={"topic_prefix": ""})).producer()
    assert other.config["linger_ms" if client == "kafka-python" else "linger.ms"] == DEFAULTS["linger_ms"] == 5


def test_linger_is_set_before_start_only(kafka_bootstrap: str) -> None:
    producer = KafkaBus(f"kafka://{kafka_bootstrap}").producer()
    producer.set_linger_ms(0)
    producer.start()
    try:
        with pytest.raises(RuntimeError, match="after start"):
            producer.set_linger_ms(3)
    finally:
        producer.close()
