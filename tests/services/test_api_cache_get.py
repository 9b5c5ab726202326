"""``GET /v1/questions/<id>`` answers from the cache (issue 13, item 1), over real PostgreSQL,
Redis and Kafka: a result that only Redis holds is answered, and a cached result is still
answered, with ``attempts`` null, while PostgreSQL is stopped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from qaflow.cache.redis import RedisCache
from qaflow.core.ids import question_id
from qaflow.core.messages import ResultMessage, ScoreRecord, Status
from qaflow.core.settings import ApiSettings
from qaflow.devstack import PostgresServer
from qaflow.services.api.app import create_app
from qaflow.services.web.app import runtime
from qaflow.store.base import WriteBatch
from tests.conftest import _require

pytestmark = pytest.mark.integration

REFERENCE = "Rayleigh scattering of sunlight by the air favours short, blue wavelengths."


def _result(title: str) -> ResultMessage:
    return ResultMessage(question_id=question_id(title, ""), status=Status.VALIDATED, title=title,
                         reference_answer=REFERENCE, answer="Because of Rayleigh scattering.", score=0.91,
                         best_generation=1, generations=1, model="sim", scorer={"name": "lexical"},
                         submitted_at=time.time() - 3)


@pytest.fixture
def cache(redis_url: str) -> Iterator[RedisCache]:
    c = RedisCache(redis_url)  # the api's own key prefix: the test's titles make its keys unique
    c.start()
    yield c
    c.close()


@pytest.fixture
def api(pg_url: str, redis_url: str, kafka_bootstrap: str, unique_name: str) -> Iterator[FlaskClient]:
    # one kept connection, so that one terminated session is all the api has
    settings = ApiSettings(bus_url=f"kafka://{kafka_bootstrap}", store_url=pg_url + "?pool_min=1&pool_max=1",
                           cache_url=redis_url, topic_prefix=f"{unique_name}.")
    app = create_app(settings)
    runtime(app).warm_up()
    yield app.test_client()
    runtime(app).close()


def test_get_answers_a_result_only_the_cache_holds(api: FlaskClient, cache: RedisCache, unique_name: str) -> None:
    title = f"Why is the sky blue? [{unique_name}]"
    result = _result(title)
    cache.put(result, 60)  # PostgreSQL has never heard of this question

    reply = api.get(f"/v1/questions/{result.question_id}")
    assert reply.status_code == 200, reply.get_json()
    body: dict[str, Any] = reply.get_json()
    assert (body["id"], body["status"], body["attempts"]) == (result.question_id, "validated", [])
    assert ResultMessage.model_validate(body["result"]) == result


def test_get_answers_from_the_cache_while_postgres_is_stopped(tmp_path: Path, redis_url: str, kafka_bootstrap: str,
                                                              cache: RedisCache, unique_name: str) -> None:
    postgres = PostgresServer(tmp_path / "pg")  # a server of its own: the session's is shared
    _require(postgres)
    postgres.start()
    try:
        pg_url = postgres.create_database("qa")
        app = create_app(ApiSettings(bus_url=f"kafka://{kafka_bootstrap}", store_url=pg_url, cache_url=redis_url,
                                     topic_prefix=f"{unique_name}."))
        runtime(app).warm_up()
        api = app.test_client()
        cached, uncached = _result(f"Cached [{unique_name}]"), _result(f"Not cached [{unique_name}]")
        attempt = ScoreRecord(question_id=cached.question_id, generation=1, answer="Because of Rayleigh scattering.",
                              score=0.91, model="sim", scorer={"name": "lexical"}, decision="validated")
        runtime(app).store.write(WriteBatch(results=[cached, uncached], attempts=[attempt]))
        cache.put(cached, 60)

        body = api.get(f"/v1/questions/{cached.question_id}").get_json()
        assert [a["generation"] for a in body["attempts"]] == [1]

        postgres.stop()
        reply = api.get(f"/v1/questions/{cached.question_id}")
        assert reply.status_code == 200, reply.get_json()
        body = reply.get_json()
        assert (body["status"], body["attempts"]) == ("validated", None)
        assert ResultMessage.model_validate(body["result"]) == cached

        missed = api.get(f"/v1/questions/{uncached.question_id}")  # only PostgreSQL knows it
        assert missed.status_code == 503
        assert missed.headers["Retry-After"] == "5"
        runtime(app).close()
    finally:
        postgres.stop()
