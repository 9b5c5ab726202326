"""POST /v1/questions:batch over embedded backends and over real PostgreSQL + Redis + Kafka
(the fixtures of test_api.py; every response is checked against the app's OpenAPI document),
and with its own Kafka broker stopped: the same fast 503 as the single POST (issue 10).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from qaflow.core.ids import question_id
from qaflow.core.messages import ResultMessage, Status
from qaflow.core.settings import ApiSettings
from qaflow.devstack import KafkaServer
from qaflow.services.api.app import create_app
from qaflow.services.api.metrics import SUBMISSIONS
from qaflow.services.web.app import runtime
from qaflow.store.base import WriteBatch
from tests.services import test_api
from tests.services.test_api import PROBLEM, REFERENCE, Client, Env, terminal

env = test_api.env  # the same fixtures: embedded backends, and real servers (integration)
client = test_api.client

BATCH = "/v1/questions:batch"


def _q(title: str, **fields: Any) -> dict[str, Any]:
    return {"title": title, "reference_answer": REFERENCE, **fields}


def _submitted(source: str) -> float:
    return SUBMISSIONS.labels(source)._value.get()


def test_a_batch_answers_each_question_as_the_single_post_would(env: Env, client: Client) -> None:
    known, new1, new2 = (env.title(t) for t in ("Known already?", "First new one?", "Second new one?"))
    result = terminal(known, Status.VALIDATED, score=0.93)
    env.store.write(WriteBatch(results=[result]))
    before = {s: _submitted(s) for s in ("store", "queued", "in-flight")}

    r = client.post(BATCH, json={"questions": [_q(new1), _q(known), _q(new2, category=3),
                                               _q("  " + new1.upper() + " "), _q(new2)]})
    assert r.status_code == 200, r.get_json()
    items = r.get_json()["results"]
    ids = [question_id(t, "") for t in (new1, known, new2, new1, new2)]
    assert [i["id"] for i in items] == ids  # request order
    assert [i["source"] for i in items] == ["queued", "store", "queued", "in-flight", "in-flight"]
    assert [i["status"] for i in items] == ["queued", "validated", "queued", "queued", "queued"]
    assert ResultMessage.model_validate(items[1]["result"]) == result
    assert all("result" not in i for i in (items[0], items[2], items[3], items[4]))
    assert env.queued(ids[0]) == 1 and env.queued(ids[2]) == 1  # the duplicates were not enqueued again
    assert env.queued(ids[1]) == 0
    assert {s: _submitted(s) - before[s] for s in before} == {"store": 1, "queued": 2, "in-flight": 2}

    again = client.post(BATCH, json={"questions": [_q(new2), _q(known)]}).get_json()["results"]
    assert [(i["source"], i["status"]) for i in again] == [("in-flight", "queued"), ("cache", "validated")]
    assert client.post("/v1/questions", json=_q(new1)).get_json()["source"] == "in-flight"
    assert env.queued(ids[2]) == 1


def test_one_invalid_question_refuses_the_whole_batch_naming_its_index(env: Env, client: Client) -> None:
    good = env.title("A good question?")
    r = client.post(BATCH, json={"questions": [_q(good), {"title": "  ", "reference_answer": REFERENCE},
                                               _q(env.title("Another good one?"), categroy=2)]})
    assert r.status_code == 422 and r.content_type == PROBLEM
    body = r.get_json()
    assert body["errors"] == [{"field": "questions[1].title", "detail": "must not be empty or blank"},
                              {"field": "questions[2].categroy", "detail": "unknown field"}]
    assert body["field"] == "questions[1].title"
    qid = question_id(good, "")
    assert env.store.status(qid) is None  # nothing recorded
    assert env.queued(qid) == 0  # nothing enqueued
    assert client.post(BATCH, json={"questions": [_q(good), "not an object"]}).get_json()["errors"] == [
        {"field": "questions[1]", "detail": "body must be a JSON object, got string"}]


@pytest.mark.parametrize(("body", "detail"), [
    ({"questions": []}, "must hold at least one question"),
    ({"questions": [_q(f"Question {i}?") for i in range(4)]}, "holds 4 questions; at most 3"),
    ({}, "is required"),
    ({"questions": {"title": "x"}}, "must be an array, got object"),
])
def test_an_empty_or_too_large_batch_is_422(env: Env, body: dict[str, Any], detail: str) -> None:
    client = env.make_app(max_batch_questions=3)
    r = client.post(BATCH, json=body)
    assert r.status_code == 422 and r.content_type == PROBLEM
    assert r.get_json()["field"] == "questions"
    assert detail in r.get_json()["detail"]
    assert client.get("/openapi.json").get_json()["paths"][BATCH]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["properties"]["questions"]["maxItems"] == 3
    assert client.post(BATCH, json={"questions": [_q(env.title(f"Fits {i}?")) for i in range(3)]}).status_code == 200


def test_the_body_limit_binds_a_batch_too(env: Env) -> None:
    client = env.make_app(max_body_bytes=4096)
    r = client.post(BATCH, json={"questions": [_q(env.title(f"Question {i} " + "x" * 100)) for i in range(40)]})
    assert r.status_code == 413 and r.content_type == PROBLEM


def test_a_batch_needs_the_api_key(env: Env) -> None:
    client = env.make_app(api_key="s3cret-key")
    body = {"questions": [_q(env.title("Who holds the key?"))]}
    r = client.post(BATCH, json=body, headers={"X-API-Key": "wrong"})
    assert r.status_code == 401 and "X-API-Key" in r.headers["WWW-Authenticate"]
    assert client.post(BATCH, json=body, headers={"X-API-Key": "s3cret-key"}).status_code == 200
    assert client.get("/openapi.json").get_json()["paths"][BATCH]["post"]["security"] == [{"ApiKey": []}]


# --- Kafka down: a broker of its own (the session's is shared with other tests) ---


@pytest.mark.integration
def test_kafka_down_is_a_fast_503_and_nothing_stays_recorded(broker: KafkaServer, tmp_path: Path,
                                                             unique_name: str) -> None:
    store_url = f"sqlite:///{tmp_path / 'qa.db'}"
    settings = ApiSettings(bus_url=f"kafka://{broker.bootstrap}", store_url=store_url, cache_url="memory://",
                           topic_prefix=f"{unique_name}.")
    app = create_app(settings)
    try:
        runtime(app).warm_up()
        flask = app.test_client()
        assert flask.post(BATCH, json={"questions": [_q("before the outage?")]}).status_code == 200

        broker.stop()
        titles = [f"during the outage {i}?" for i in range(20)]
        started = time.monotonic()
        r = flask.post(BATCH, json={"questions": [_q(t) for t in titles]})
        took = time.monotonic() - started
        assert r.status_code == 503, r.get_json()
        assert r.content_type == PROBLEM and int(r.headers["Retry-After"]) > 0
        assert took < 2.0, took  # issue 10's bar is 1 s; 1 s more for a loaded 2-core machine
        # released, not left recorded: the same batch again is tried again (503), not answered in-flight
        assert flask.post(BATCH, json={"questions": [_q(t) for t in titles]}).status_code == 503
    finally:
        runtime(app).close()
