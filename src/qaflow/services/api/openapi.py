"""The api's OpenAPI 3.1 document, built from the same limits and message schemas the code uses.

The result and attempt schemas come from the pydantic messages themselves, the request
limits from :mod:`qaflow.services.api.validation`, and the security section from the
configuration (the API key is required only when one is set), so the document cannot drift
from the behaviour. tests/services/test_api*.py validate real responses against it.
"""

from __future__ import annotations

from typing import Any

from qaflow.core.messages import ResultMessage, ScoreRecord
from qaflow.core.settings import ApiSettings
from qaflow.pipeline.submit import Source
from qaflow.services.api.validation import CATEGORY_MAX, CATEGORY_MIN, TEXT_FIELDS

REF = "#/components/schemas/{model}"
STATUSES = ["queued", "processing", "validated", "exhausted", "failed"]
NO_NUL = r"^[^\x00]*$"  # PostgreSQL's TEXT refuses NUL, so the api does (422)
NON_BLANK_NO_NUL = r"^[^\x00]*[^\x00\s][^\x00]*$"  # and a required text has a non-space character
ID_PATTERN = "^[0-9a-fA-F]{32}$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _model(model: Any, components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(mode="serialization", ref_template=REF)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return _ref(model.__name__)


def _text(name: str) -> dict[str, Any]:
    spec = TEXT_FIELDS[name]
    schema: dict[str, Any] = {"type": "string", "maxLength": spec.max_length, "pattern": NO_NUL}
    if spec.required:
        schema.update(minLength=1, pattern=NON_BLANK_NO_NUL)
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": _ref("Problem")}}}


def _json(description: str, schema: dict[str, Any], headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def schemas() -> dict[str, Any]:
    components: dict[str, Any] = {}
    result = _model(ResultMessage, components)
    attempt = _model(ScoreRecord, components)
    components.update(
        QuestionRequest={
            "type": "object",
            "additionalProperties": False,
            "required": ["title", "reference_answer"],
            "properties": {
                "title": _text("title"),
                "content": _text("content"),
                "reference_answer": _text("reference_answer"),
                "category": {"anyOf": [{"type": "integer", "minimum": CATEGORY_MIN, "maximum": CATEGORY_MAX},
                                       {"type": "null"}]},
                "run_id": _text("run_id"),
            },
        },
        Answered={
            "type": "object",
            "required": ["id", "status", "source", "result"],
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "status": {"enum": ["validated", "exhausted", "failed"]},
                "source": {"enum": [Source.CACHE.value, Source.STORE.value]},
                "result": result,
            },
        },
        Accepted={
            "type": "object",
            "required": ["id", "status", "source"],
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "status": {"enum": ["queued", "processing"]},
                "source": {"enum": [Source.QUEUED.value, Source.IN_FLIGHT.value]},
                "detail": {"type": "string"},
            },
        },
        BatchResults={
            "type": "object",
            "required": ["results"],
            "properties": {"results": {
                "type": "array",
                "description": "One entry per submitted question, in request order; each is what the single "
                               "POST would answer (Answered for 200, Accepted for 202).",
                "items": {"anyOf": [_ref("Answered"), _ref("Accepted")]},
            }},
        },
        QuestionState={
            "type": "object",
            "required": ["id", "status", "result", "attempts"],
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "status": {"enum": STATUSES},
                "result": {"anyOf": [result, {"type": "null"}]},
                "attempts": {
                    "anyOf": [{"type": "array", "items": attempt}, {"type": "null"}],
                    "description": "Scored attempts, oldest first; null when the result came from the cache "
                                   "and the store could not be reached.",
                },
            },
        },
        Stats=_stats_schema(),
        QuestionTrace=_trace_schema(),
        Problem={
            "type": "object",
            "description": "RFC 9457 problem details; `field` names the offending input field.",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "field": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {"type": "object", "required": ["field", "detail"],
                              "properties": {"field": {"type": "string"}, "detail": {"type": "string"}}},
                },
            },
        },
        Health={"type": "object", "required": ["status"],
                "properties": {"status": {"const": "ok"}, "pid": {"type": "integer"}}},
        Ready={
            "type": "object",
            "required": ["status", "checks"],
            "properties": {"status": {"enum": ["ok", "unavailable"]},
                           "checks": {"type": "object", "additionalProperties": {"type": "string"}}},
        },
    )
    return components


def _stats_schema() -> dict[str, Any]:
    count = {"type": "integer", "minimum": 0}
    maybe_score = {"anyOf": [{"type": "number"}, {"type": "null"}]}
    counts = {"type": "object", "additionalProperties": count}
    return {
        "type": "object",
        "required": ["questions", "by_status", "mean_score", "attempts", "generations_distribution",
                     "mean_score_by_generation", "dead_letters", "cache"],
        "properties": {
            "run_id": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "questions": count,
            "by_status": {
                "type": "object",
                "required": ["validated", "exhausted", "failed", "pending"],
                "properties": {k: count for k in ("validated", "exhausted", "failed", "pending")},
            },
            "mean_score": maybe_score,
            "attempts": count,
            "generations_distribution": {**counts, "description": "LLM answers used -> questions"},
            "mean_score_by_generation": {"type": "object", "additionalProperties": {"type": "number"}},
            "dead_letters": count,
            "cache": {
                "type": "object",
                "description": "From this api instance's Prometheus counters (all its gunicorn workers).",
                "required": ["hits", "misses", "errors", "hit_rate", "submissions"],
                "properties": {
                    "scope": {"type": "string"},
                    "hits": count,
                    "misses": count,
                    "errors": count,
                    "hit_rate": {"anyOf": [{"type": "number", "minimum": 0, "maximum": 1}, {"type": "null"}]},
                    "submissions": {
                        "type": "object",
                        "required": [s.value for s in Source],
                        "properties": {s.value: count for s in Source},
                    },
                },
            },
        },
    }


def _batch_request(max_items: int) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["questions"],
        "properties": {"questions": {"type": "array", "minItems": 1, "maxItems": max_items,
                                     "items": _ref("QuestionRequest")}},
    }


def document(settings: ApiSettings) -> dict[str, Any]:
    e400 = _problem("Malformed JSON or request framing, a body that is not UTF-8, or a malformed question id.")
    e413 = _problem("Body larger than QAFLOW_MAX_BODY_BYTES.")
    e415 = _problem("Content-Type is not application/json.")
    e422 = _problem("A field is missing, blank, of the wrong type, too long, or unknown; `field` names it.")
    e503 = _problem("Store or message bus unavailable; retry after Retry-After seconds.")
    e500 = _problem("Unexpected error (logged on the server).")
    e401 = _problem("QAFLOW_API_KEY is set and X-API-Key is missing or wrong.")
    e405 = _problem("Method not allowed on this path.")
    location = {"Location": {"description": "Where to poll the question.", "schema": {"type": "string"}}}
    e408 = _problem("The body stopped arriving (no byte for the server's read timeout).")
    id_param = {"name": "question_id", "in": "path", "required": True,
                "description": "32 hexadecimal characters, either case (the hash of the normalised title and "
                               "content); anything else is 400.",
                "schema": {"type": "string", "pattern": ID_PATTERN}}
    run_id = TEXT_FIELDS["run_id"]
    run_id_param = {"name": "run_id", "in": "query", "required": False,
                    "description": "Only questions of this run; at most once, empty means all runs (400 otherwise).",
                    "schema": {"type": "string", "maxLength": run_id.max_length, "pattern": NO_NUL}}
    detail_param = {"name": "detail", "in": "query", "required": False,
                    "description": "trace: the question's timeline (submitted, each LLM call with outcome and "
                                   "latency, each retry wait, each score, the terminal decision); given at most once, "
                                   "any other value is 400.",
                    "schema": {"enum": ["trace"]}}
    body_limit = settings.max_body_bytes
    probe = {"200": _json("Up.", _ref("Health")), "500": e500}
    submit: dict[str, Any] = {
        "summary": "Submit a question",
        "description": "Answered at once from the cache or the store when known; otherwise recorded and "
                       "enqueued exactly once (a repeat while in flight is not enqueued again).",
        "operationId": "submitQuestion",
        "requestBody": {
            "required": True,
            "description": f"At most {body_limit} bytes of UTF-8 JSON in all (QAFLOW_MAX_BODY_BYTES; 413 above). "
                           "This limit binds before the field maxima: they cannot all be reached in one body.",
            "content": {"application/json": {"schema": _ref("QuestionRequest")}},
        },
        "x-max-body-bytes": body_limit,
        "responses": {
            "200": _json("Already answered.", _ref("Answered")),
            "202": _json("Queued now, or already in flight.", _ref("Accepted"), location),
            "400": e400, "405": e405, "408": e408, "413": e413, "415": e415, "422": e422, "500": e500,
            "503": e503,
        },
    }
    max_items = settings.max_batch_questions
    batch: dict[str, Any] = {
        "summary": "Submit many questions at once",
        "description": f"Up to {max_items} questions (QAFLOW_MAX_BATCH_QUESTIONS), validated all or nothing: "
                       "one invalid question and none is recorded or enqueued (422; each error's `field` is "
                       "`questions[i].<field>`). Each question is decided as by POST /v1/questions; a repeat "
                       "within the batch is in-flight. For bulk loads: one store round trip and one wait for "
                       "Kafka per batch instead of per question.",
        "operationId": "submitQuestionBatch",
        "requestBody": {
            "required": True,
            "description": f"At most {body_limit} bytes of UTF-8 JSON in all (QAFLOW_MAX_BODY_BYTES; 413 above), "
                           "which may bind before the item count does.",
            "content": {"application/json": {"schema": _batch_request(max_items)}},
        },
        "x-max-body-bytes": body_limit,
        "responses": {
            "200": _json("Every question answered, queued or found in flight; one result each, in order.",
                         _ref("BatchResults")),
            "400": e400, "405": e405, "408": e408, "413": e413, "415": e415,
            "422": _problem("No questions, more than QAFLOW_MAX_BATCH_QUESTIONS, or an invalid question "
                            "(`questions[i].<field>` names it); nothing was submitted."),
            "500": e500, "503": e503,
        },
    }
    for operation in (submit, batch):
        if settings.api_key is not None:
            operation["security"] = [{"ApiKey": []}]
            operation["responses"]["401"] = e401
        else:
            operation["security"] = [{}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "qaflow api",
            "version": "1",
            "description": "Submit questions, poll their state and results, read summary statistics. "
                           "Errors are RFC 9457 problem documents.",
        },
        "paths": {
            "/v1/questions": {"post": submit},
            "/v1/questions:batch": {"post": batch},
            "/v1/questions/{question_id}": {"get": {
                "summary": "State, result and scored attempts of a question; with detail=trace, its timeline",
                "operationId": "getQuestion",
                "parameters": [id_param, detail_param],
                "responses": {"200": _json("Known question (QuestionTrace with detail=trace).",
                                           {"anyOf": [_ref("QuestionState"), _ref("QuestionTrace")]}),
                              "400": e400,
                              "404": _problem("No question with this id."), "405": e405, "500": e500,
                              "503": e503},
            }},
            "/v1/stats": {"get": {
                "summary": "Totals by status, scores, generations used, dead letters, cache hit rate",
                "operationId": "getStats",
                "parameters": [run_id_param],
                "responses": {"200": _json("Statistics.", _ref("Stats")),
                              "400": _problem("run_id repeated, too long, or holding NUL."), "405": e405,
                              "500": e500, "503": e503},
            }},
            "/openapi.json": {"get": {"summary": "This document", "operationId": "getOpenApi",
                                      "responses": {"200": _json("OpenAPI 3.1 document.", {"type": "object"})}}},
            "/healthz": {"get": {"summary": "Liveness: the process answers", "operationId": "healthz",
                                 "responses": probe}},
            "/readyz": {"get": {
                "summary": "Readiness: store reachable, producer started", "operationId": "readyz",
                "responses": {"200": _json("Ready.", _ref("Ready")), "503": _json("Not ready.", _ref("Ready"))},
            }},
            "/metrics": {"get": {
                "summary": "Prometheus metrics (all gunicorn workers)", "operationId": "metrics",
                "responses": {"200": {"description": "Prometheus text format.",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}}},
            }},
        },
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    }


def _trace_schema() -> dict[str, Any]:
    """``GET /v1/questions/{id}?detail=trace``: see :func:`qaflow.core.trace.build_trace`."""
    number_or_null = {"type": ["number", "null"]}
    event = {
        "type": "object",
        "required": ["step", "at", "t_s"],
        "properties": {
            "step": {"enum": ["submitted", "call", "retry_wait", "score", "dead_letter", "terminal"]},
            "at": {"type": "number", "description": "Epoch seconds."},
            "t_s": {**number_or_null, "description": "Seconds since the submission."},
            "generation": {"type": "integer", "minimum": 1},
            "delivery": {"type": "integer", "minimum": 1},
            "outcome": {"type": "string", "description": "call: ok, or the error class (quota, overload, "
                                                         "timeout, permanent)."},
            "latency_ms": {"type": "number"},
            "wait_s": {"type": "number", "description": "retry_wait: the delay chosen after the failed call."},
            "score": number_or_null,
            "decision": {"type": "string"},
            "status": {"type": "string"},
            "cost_usd": number_or_null,
        },
    }
    return {
        "type": "object",
        "required": ["id", "status", "trace"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            "status": {"enum": STATUSES},
            "trace": {
                "type": "object",
                "required": ["question_id", "status", "events", "cost_usd"],
                "properties": {
                    "question_id": {"type": "string"},
                    "status": {"enum": STATUSES},
                    "submitted_at": number_or_null,
                    "cost_usd": {**number_or_null, "description": "USD of the priced calls; null without a price."},
                    "events": {"type": "array", "items": event},
                },
            },
        },
    }
