"""The api app, over embedded backends (memory bus, SQLite, memory cache) and over real
PostgreSQL + Redis + Kafka. Every response is checked against the app's own OpenAPI document.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from qaflow.core import topics
from qaflow.core.ids import question_id
from qaflow.core.messages import ResultMessage, ScoreRecord, Status
from qaflow.core.settings import ApiSettings
from qaflow.pipeline.submit import Submitter
from qaflow.services.api.app import create_app
from qaflow.services.web.app import runtime
from qaflow.store import open_store
from qaflow.store.base import Store, WriteBatch

REFERENCE = "Rayleigh scattering of sunlight by the air favours short, blue wavelengths."
MAX_BODY = 512 * 1024  # above the 100 KB title below, so that one is refused by its field limit
PROBLEM = "application/problem+json"


# --- OpenAPI: every response a test sees must match the document ---


class OpenApiCheck:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.paths = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"), p) for p in doc["paths"]]
        self.seen: set[tuple[str, str, str]] = set()

    def _schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", "components": self.doc["components"],
                **schema}

    def response(self, method: str, path: str, r: TestResponse) -> None:
        template = next((t for rx, t in self.paths if rx.match(path.split("?")[0])), None)
        if template is None:  # an undocumented path: any error must still be a problem document
            assert r.status_code == 404 and r.content_type == PROBLEM, (path, r.status_code)
            return
        op = self.doc["paths"][template].get(method.lower())
        if op is None:
            assert r.status_code == 405 and r.content_type == PROBLEM
            return
        status = str(r.status_code)
        assert status in op["responses"], f"{method} {template}: {status} is not documented"
        self.seen.add((method.upper(), template, status))
        content = op["responses"][status].get("content")
        if not content:
            return
        media = r.content_type.split(";")[0]
        assert media in content, f"{method} {template} {status}: {media} not in {list(content)}"
        if media.endswith("json"):
            jsonschema.validate(r.get_json(), self._schema(content[media]["schema"]))
        for name in op["responses"][status].get("headers", {}):
            assert name in r.headers, f"{method} {template} {status}: header {name} missing"

    def request_valid(self, body: Any) -> bool:
        schema = self._schema(self.doc["paths"]["/v1/questions"]["post"]["requestBody"]["content"]
                              ["application/json"]["schema"])
        return jsonschema.Draft202012Validator(schema).is_valid(body)


class Client:
    """The Flask test client, with every response checked against the OpenAPI document."""

    def __init__(self, app: Flask, check: OpenApiCheck) -> None:
        self.app = app
        self.flask: FlaskClient = app.test_client()
        self.check = check

    def open(self, method: str, path: str, **kw: Any) -> TestResponse:
        r = self.flask.open(path, method=method, **kw)
        self.check.response(method, path, r)
        return r

    def post(self, path: str, **kw: Any) -> TestResponse:
        return self.open("POST", path, **kw)

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.open("GET", path, **kw)

    def ask(self, title: str, **fields: Any) -> TestResponse:
        return self.post("/v1/questions", json={"title": title, "reference_answer": REFERENCE, **fields})


# --- The two environments ---


@dataclass
class Env:
    kind: str
    settings: ApiSettings
    store: Store  # a second connection to the api's store, for writing results
    queued: Callable[[str], int]  # records on qa.questions keyed by a question id
    make_app: Callable[..., Client]
    title: Callable[[str], str]  # a title unique to this test run


def _memory_records(bus_url: str) -> Callable[[str], int]:
    from qaflow.bus.memory import MemoryBus

    bus = MemoryBus(bus_url)
    bus.start()

    def count(key: str) -> int:
        with bus.broker.cond:
            return sum(1 for part in bus.broker.ensure(topics.QUESTIONS) for rec in part if rec.key == key)

    return count


def _kafka_records(bootstrap: str) -> Callable[[str], int]:
    from kafka import KafkaConsumer, TopicPartition

    def count(key: str) -> int:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=2000)
        try:
            ids = None
            for _ in range(50):
                ids = consumer.partitions_for_topic(topics.QUESTIONS)
                if ids:
                    break
                time.sleep(0.2)
            assert ids, f"topic {topics.QUESTIONS} not found"
            parts = [TopicPartition(topics.QUESTIONS, p) for p in ids]
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
            end = consumer.end_offsets(parts)
            found = 0
            deadline = time.monotonic() + 30
            while any(consumer.position(tp) < end[tp] for tp in parts) and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=500).values():
                    found += sum(1 for rec in records if rec.key == key.encode())
            return found
        finally:
            consumer.close()

    return count


@pytest.fixture(params=["embedded", pytest.param("servers", marks=pytest.mark.integration)])
def env(request: pytest.FixtureRequest, tmp_path: Path, unique_name: str) -> Iterator[Env]:
    if request.param == "embedded":
        values = {"bus_url": f"memory://{unique_name}", "store_url": f"sqlite:///{tmp_path / 'qa.db'}",
                  "cache_url": "memory://"}
        queued = _memory_records(values["bus_url"])
    else:
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        values = {"bus_url": f"kafka://{bootstrap}", "store_url": request.getfixturevalue("pg_url"),
                  "cache_url": request.getfixturevalue("redis_url")}
        queued = _kafka_records(bootstrap)
    apps: list[Flask] = []

    def make_app(**overrides: Any) -> Client:
        settings = ApiSettings(**{"max_body_bytes": MAX_BODY, **values, **overrides})
        app = create_app(settings)
        apps.append(app)
        if not overrides.get("store_url"):  # connect now, as gunicorn's post_worker_init does
            runtime(app).warm_up()
        client = Client(app, OpenApiCheck(app.test_client().get("/openapi.json").get_json()))
        return client

    store = open_store(values["store_url"])
    store.start()
    yield Env(request.param, ApiSettings(**values), store, queued, make_app,
              lambda text: f"{text} [{unique_name}]")
    for app in apps:
        runtime(app).close()
    store.close()
    if request.param == "embedded":
        from qaflow.bus.memory import MemoryBus

        MemoryBus.reset(unique_name)


@pytest.fixture
def client(env: Env) -> Client:
    return env.make_app()


def terminal(title: str, status: Status = Status.VALIDATED, score: float = 0.91, generations: int = 1) -> ResultMessage:
    return ResultMessage(
        question_id=question_id(title, ""), status=status, title=title, reference_answer=REFERENCE,
        answer="Because of Rayleigh scattering.", score=score, best_generation=generations, generations=generations,
        model="sim", scorer={"name": "lexical"}, submitted_at=time.time() - 3,
    )


def attempt(title: str, generation: int, score: float, decision: str) -> ScoreRecord:
    return ScoreRecord(question_id=question_id(title, ""), generation=generation, answer=f"answer {generation}",
                       score=score, model="sim", scorer={"name": "lexical"}, decision=decision)


# --- The happy paths ---


def test_submit_is_queued_once_and_a_repeat_is_in_flight(env: Env, client: Client) -> None:
    title = env.title("Why is the sky blue?")
    qid = question_id(title, "")
    first = client.ask(title, content="", category=2)
    assert first.status_code == 202
    assert first.get_json() == {"id": qid, "status": "queued", "source": "queued"}
    assert first.headers["Location"] == f"/v1/questions/{qid}"

    again = client.ask("  WHY is the sky   blue?  " + title.removeprefix("Why is the sky blue?"))  # same id
    assert again.status_code == 202
    assert again.get_json()["source"] == "in-flight"
    assert again.get_json()["id"] == qid
    assert env.queued(qid) == 1

    state = client.get(first.headers["Location"])
    assert state.status_code == 200
    assert state.get_json() == {"id": qid, "status": "queued", "result": None, "attempts": []}


def test_a_known_answer_comes_from_the_store_then_from_the_cache(env: Env, client: Client) -> None:
    title = env.title("What is the boiling point of water?")
    qid = question_id(title, "")
    assert client.ask(title).status_code == 202
    result = terminal(title, Status.EXHAUSTED, score=0.62, generations=2)
    env.store.write(WriteBatch(results=[result], attempts=[attempt(title, 1, 0.41, "regenerate"),
                                                           attempt(title, 2, 0.62, "exhausted")]))

    from_store = client.ask(title)
    assert from_store.status_code == 200
    body = from_store.get_json()
    assert (body["id"], body["status"], body["source"]) == (qid, "exhausted", "store")
    assert ResultMessage.model_validate(body["result"]) == result

    from_cache = client.ask(title)
    assert from_cache.status_code == 200
    assert from_cache.get_json()["source"] == "cache"
    assert ResultMessage.model_validate(from_cache.get_json()["result"]) == result
    assert env.queued(qid) == 1  # never enqueued again

    state = client.get(f"/v1/questions/{qid}").get_json()
    assert state["status"] == "exhausted"
    assert state["result"]["score"] == pytest.approx(0.62)
    assert [(a["generation"], a["decision"]) for a in state["attempts"]] == [(1, "regenerate"), (2, "exhausted")]


def test_status_is_processing_once_an_attempt_is_stored(env: Env, client: Client) -> None:
    title = env.title("How far is the Moon?")
    qid = question_id(title, "")
    client.ask(title)
    env.store.write(WriteBatch(attempts=[attempt(title, 1, 0.3, "regenerate")]))
    state = client.get(f"/v1/questions/{qid.upper()}")  # ids are case-insensitive
    assert state.get_json()["status"] == "processing"
    assert client.ask(title).get_json() == {"id": qid, "status": "processing", "source": "in-flight",
                                            "detail": "already submitted; not enqueued again"}


def test_unknown_and_malformed_ids(client: Client) -> None:
    unknown = client.get("/v1/questions/" + "ab" * 16)
    assert unknown.status_code == 404 and unknown.content_type == PROBLEM
    assert "ab" * 16 in unknown.get_json()["detail"]
    for bad in ("xyz", "0" * 31, "g" * 32, "0" * 33):
        r = client.get(f"/v1/questions/{bad}")
        assert r.status_code == 400 and r.get_json()["field"] == "id", bad


def test_a_trace_shows_every_step_in_order(env: Env, client: Client) -> None:
    from qaflow.core.messages import CallRecord

    title = env.title("Why do cats purr?")
    qid = question_id(title, "")
    client.ask(title)
    t0 = time.time()

    def call(generation: int, delivery: int, status: str, wait: float | None = None) -> CallRecord:
        ok = status == "ok"
        return CallRecord(question_id=qid, generation=generation, delivery=delivery, provider="openai", model="m",
                          status=status, latency_ms=40.0, prompt_tokens=9 if ok else None,
                          completion_tokens=30 if ok else None, retry_wait_s=wait, cost_usd=0.002 if ok else None,
                          started_at=t0 + generation + delivery / 10,
                          finished_at=t0 + generation + delivery / 10 + 0.04)

    env.store.write(WriteBatch(
        calls=[call(1, 1, "ok"), call(2, 1, "quota", 1.5), call(2, 2, "ok")],
        attempts=[attempt(title, 1, 0.2, "regenerate"), attempt(title, 2, 0.95, "validated")],
        results=[terminal(title, score=0.95, generations=2)],
    ))
    r = client.get(f"/v1/questions/{qid}?detail=trace")
    assert r.status_code == 200
    body = r.get_json()
    assert (body["id"], body["status"]) == (qid, "validated")
    steps = [(e["step"], e.get("generation"), e.get("delivery")) for e in body["trace"]["events"]]
    assert steps == [("submitted", None, None), ("call", 1, 1), ("score", 1, None), ("call", 2, 1),
                     ("retry_wait", 2, 1), ("call", 2, 2), ("score", 2, None), ("terminal", None, None)]
    quota = body["trace"]["events"][3]
    assert quota["outcome"] == "quota" and quota["latency_ms"] == 40.0
    assert body["trace"]["events"][4]["wait_s"] == 1.5
    assert body["trace"]["cost_usd"] == pytest.approx(0.004)
    assert client.get(f"/v1/questions/{qid}?detail=everything").status_code == 400
    assert client.get(f"/v1/questions/{'cd' * 16}?detail=trace").status_code == 404


def test_stats(env: Env, client: Client) -> None:
    titles = [env.title(f"stats question {i}") for i in range(4)]
    for t in titles:
        client.ask(t, run_id="run-a")
    env.store.write(WriteBatch(
        results=[terminal(titles[0], score=0.9), terminal(titles[1], Status.EXHAUSTED, 0.5, generations=3)],
        attempts=[attempt(titles[0], 1, 0.9, "validated"), attempt(titles[1], 1, 0.2, "regenerate"),
                  attempt(titles[1], 2, 0.4, "regenerate"), attempt(titles[1], 3, 0.5, "exhausted")],
    ))
    client.ask(titles[0])  # answered from the store
    stats = client.get("/v1/stats").get_json()
    assert stats["questions"] == 4
    assert stats["by_status"] == {"validated": 1, "exhausted": 1, "failed": 0, "pending": 2}
    assert stats["mean_score"] == pytest.approx(0.7)
    assert stats["attempts"] == 4
    assert stats["generations_distribution"] == {"1": 1, "3": 1}
    assert stats["mean_score_by_generation"] == pytest.approx({"1": 0.55, "2": 0.4, "3": 0.5})
    assert stats["dead_letters"] == 0
    cache = stats["cache"]
    assert cache["hits"] + cache["misses"] >= 5 and cache["submissions"]["store"] >= 1
    by_run = client.get("/v1/stats?run_id=run-a").get_json()
    assert by_run["run_id"] == "run-a" and by_run["questions"] == 4
    assert client.get("/v1/stats?run_id=nope").get_json()["questions"] == 0


def test_concurrent_duplicates_enqueue_exactly_once(env: Env, client: Client) -> None:
    title = env.title("Racing question: who wins?")
    qid = question_id(title, "")
    start = threading.Barrier(16)
    replies: list[dict[str, Any]] = []
    lock = threading.Lock()

    def submit() -> None:
        local = client.app.test_client()
        start.wait()
        r = local.post("/v1/questions", json={"title": title, "reference_answer": REFERENCE})
        with lock:
            replies.append({"http": r.status_code, **r.get_json()})

    threads = [threading.Thread(target=submit) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(replies) == 16
    assert {r["http"] for r in replies} == {202}
    assert sorted(r["source"] for r in replies) == ["in-flight"] * 15 + ["queued"]
    assert env.queued(qid) == 1


# --- Bad input: JSON errors with a reason, never a 500, nothing recorded ---

BIG = "x" * 100_000


@pytest.mark.parametrize(
    ("case", "kwargs", "status", "field"),
    [
        ("malformed JSON", {"data": b'{"title": "a", ', "content_type": "application/json"}, 400, None),
        ("empty body", {"data": b"", "content_type": "application/json"}, 400, None),
        ("NaN is not JSON", {"data": b'{"title": NaN}', "content_type": "application/json"}, 400, None),
        ("deeply nested", {"data": b"[" * 100_000 + b"]" * 100_000, "content_type": "application/json"}, 400, None),
        ("invalid UTF-8", {"data": b'{"title": "caf\xe9", "reference_answer": "r"}',
                           "content_type": "application/json"}, 400, None),
        ("wrong content type", {"data": b'{"title": "a", "reference_answer": "b"}',
                                "content_type": "text/plain"}, 415, None),
        ("form post", {"data": {"title": "a"}}, 415, None),
        ("oversized body", {"json": {"title": "t", "reference_answer": "x" * (MAX_BODY + 10)}}, 413, None),
        ("not an object", {"json": ["title", "reference_answer"]}, 422, None),
        ("missing title", {"json": {"reference_answer": "r"}}, 422, "title"),
        ("missing reference", {"json": {"title": "t"}}, 422, "reference_answer"),
        ("blank title", {"json": {"title": " \t\n ", "reference_answer": "r"}}, 422, "title"),
        ("empty reference", {"json": {"title": "t", "reference_answer": ""}}, 422, "reference_answer"),
        ("null title", {"json": {"title": None, "reference_answer": "r"}}, 422, "title"),
        ("title not a string", {"json": {"title": 42, "reference_answer": "r"}}, 422, "title"),
        ("content not a string", {"json": {"title": "t", "content": ["x"], "reference_answer": "r"}}, 422, "content"),
        ("100 KB title", {"json": {"title": BIG, "reference_answer": "r"}}, 422, "title"),
        ("long content", {"json": {"title": "t", "content": "c" * 20_001, "reference_answer": "r"}}, 422, "content"),
        ("category out of range", {"json": {"title": "t", "reference_answer": "r", "category": 11}}, 422, "category"),
        ("category as text", {"json": {"title": "t", "reference_answer": "r", "category": "3"}}, 422, "category"),
        ("category as bool", {"json": {"title": "t", "reference_answer": "r", "category": True}}, 422, "category"),
        ("run_id too long", {"json": {"title": "t", "reference_answer": "r", "run_id": "r" * 201}}, 422, "run_id"),
        ("unknown field", {"json": {"title": "t", "reference_answer": "r", "referenceAnswer": "r"}}, 422,
         "referenceAnswer"),
        ("NUL character", {"json": {"title": "t\x00", "reference_answer": "r"}}, 422, "title"),
        ("lone surrogate", {"data": b'{"title": "t\\ud800", "reference_answer": "r"}',
                            "content_type": "application/json"}, 422, "title"),
    ],
)
def test_bad_input_is_a_json_error_naming_the_problem(
    env: Env, client: Client, case: str, kwargs: dict[str, Any], status: int, field: str | None
) -> None:
    r = client.post("/v1/questions", **kwargs)
    assert r.status_code == status, (case, r.get_json())
    assert r.content_type == PROBLEM
    body = r.get_json()
    assert body["status"] == status and body["detail"]
    if field is not None:
        assert body["field"] == field
        assert field in body["detail"]
    if "json" in kwargs and status == 422 and case not in ("NUL character",):
        assert not client.check.request_valid(kwargs["json"]), f"{case}: the OpenAPI request schema accepts it"
    assert env.store.stats().questions == 0


def test_the_request_schema_accepts_what_the_api_accepts(client: Client) -> None:
    body = {"title": "t", "content": None, "reference_answer": "r", "category": None, "run_id": None}
    assert client.check.request_valid(body)
    assert client.post("/v1/questions", json=body).status_code == 202


def test_a_100_kb_title_at_the_default_body_limit_is_413(env: Env) -> None:
    client = env.make_app(max_body_bytes=ApiSettings().max_body_bytes)
    r = client.ask(BIG)
    assert r.status_code == 413 and r.content_type == PROBLEM


def test_errors_of_the_framework_are_json(client: Client) -> None:
    assert client.get("/nowhere").status_code == 404
    r = client.open("DELETE", "/v1/questions")
    assert r.status_code == 405 and r.content_type == PROBLEM and "POST" in r.headers["Allow"]
    assert client.open("PUT", "/v1/stats").status_code == 405


def test_a_bug_is_a_json_500(env: Env, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: Submitter, question: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(Submitter, "submit", boom)
    r = client.ask(env.title("anything"))
    assert r.status_code == 500 and r.content_type == PROBLEM
    assert "secret" not in r.get_data(as_text=True)


@pytest.mark.parametrize("env", ["embedded"], indirect=True)  # one outage is enough
def test_unreachable_store_is_503_json_and_not_ready(env: Env) -> None:
    client = env.make_app(store_url="postgresql://qaflow@127.0.0.1:1/nothing?connect_timeout=2")
    r = client.ask("Is anyone there?")
    assert r.status_code == 503 and r.content_type == PROBLEM and r.headers["Retry-After"]
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["status"] == "unavailable"
    assert "127.0.0.1" not in ready.get_data(as_text=True)  # the reason's type only; hosts go to the log
    assert client.get("/healthz").status_code == 200


# --- API key ---


def test_api_key_guards_writes_only(env: Env) -> None:
    client = env.make_app(api_key="s3cret-key")
    title = env.title("Who holds the key?")
    body = {"title": title, "reference_answer": REFERENCE}
    for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": "s3cret-key "}, {"X-API-Key": "s3cret-keyX"}):
        r = client.post("/v1/questions", json=body, headers=headers)
        assert r.status_code == 401 and r.content_type == PROBLEM, headers
        assert "X-API-Key" in r.headers["WWW-Authenticate"]
    ok = client.post("/v1/questions", json=body, headers={"X-API-Key": "s3cret-key"})
    assert ok.status_code == 202
    assert client.get(ok.headers["Location"]).status_code == 200  # reads stay open
    doc = client.get("/openapi.json").get_json()
    assert doc["paths"]["/v1/questions"]["post"]["security"] == [{"ApiKey": []}]


def test_without_an_api_key_writes_are_open(client: Client) -> None:
    assert client.ask("Open for business?", content="no key").status_code == 202
    assert client.get("/openapi.json").get_json()["paths"]["/v1/questions"]["post"]["security"] == [{}]


# --- Probes, metrics, the document itself ---


def test_probes_and_metrics(client: Client) -> None:
    assert client.get("/healthz").get_json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["checks"] == {"store": "ok", "bus": "ok"}
    client.ask("metrics question " + str(time.time()))
    text = client.get("/metrics").get_data(as_text=True)
    for name in ("qaflow_http_requests_total", "qaflow_http_request_duration_seconds_bucket",
                 "qaflow_http_requests_in_flight", "qaflow_api_submissions_total", "qaflow_api_cache_lookups_total"):
        assert name in text
    assert 'endpoint="/v1/questions/<raw_id>"' in text or 'endpoint="/v1/questions"' in text


def test_every_route_is_documented(client: Client) -> None:
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    documented = {(p, m.upper()) for p, ops in doc["paths"].items() for m in ops}
    for rule in client.app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "{question_id}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, (path, method)
    jsonschema.Draft202012Validator.check_schema(  # the component schemas are valid JSON Schema
        {"$defs": doc["components"]["schemas"]}
    )
    assert json.loads(json.dumps(doc)) == doc
