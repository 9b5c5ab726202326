"""The api's endpoints: thin views over the Submitter and the store."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from qaflow.core.settings import ApiSettings
from qaflow.pipeline.submit import Source, Submission
from qaflow.services.api.backends import ApiBackends
from qaflow.services.api.metrics import SUBMISSIONS, cache_summary
from qaflow.services.api.openapi import document
from qaflow.services.api.submit import ApiSubmitter
from qaflow.services.api.validation import (
    InvalidQuestion,
    parse_batch,
    parse_question,
    parse_question_id,
    parse_run_id,
)
from qaflow.services.api.views import question_view
from qaflow.services.web.app import Problem, read_json, runtime

bp = Blueprint("api", __name__)

TERMINAL_KEYS = ("validated", "exhausted", "failed")


def _backends() -> ApiBackends:
    backends: ApiBackends = runtime(current_app)
    return backends


def _settings() -> ApiSettings:
    return _backends().settings


def _check_api_key() -> None:
    key = _settings().api_key
    if key is None:
        return
    sent = request.headers.get("X-API-Key", "")
    if not hmac.compare_digest(sent.encode("latin-1", "replace"), key.get_secret_value().encode("utf-8")):
        challenge = {"WWW-Authenticate": 'ApiKey header="X-API-Key"'}
        raise Problem(401, "missing or wrong X-API-Key header", headers=challenge)


@bp.post("/v1/questions")
def submit() -> tuple[Response, int] | tuple[Response, int, dict[str, str]]:
    _check_api_key()
    body = read_json()
    try:
        question = parse_question(body, _settings().run_id)
    except InvalidQuestion as exc:
        raise Problem(422, str(exc), field=exc.field, errors=exc.errors) from exc
    submission = _backends().submitter.submit(question)
    SUBMISSIONS.labels(submission.source.value).inc()
    qid = submission.question_id
    if submission.result is not None:
        return jsonify(id=qid, status=submission.status.value, source=submission.source.value,
                       result=submission.result.model_dump(mode="json")), 200
    location = f"/v1/questions/{qid}"
    body_out: dict[str, Any] = {"id": qid, "status": submission.status.value, "source": submission.source.value}
    if submission.source is Source.IN_FLIGHT:
        body_out["detail"] = "already submitted; not enqueued again"
    return jsonify(body_out), 202, {"Location": location}


@bp.post("/v1/questions:batch")
def submit_batch() -> tuple[Response, int]:
    """Many questions in one request, validated all or nothing; 200 with one result per question, in order."""
    _check_api_key()
    body = read_json()
    settings = _settings()
    try:
        questions = parse_batch(body, settings.max_batch_questions, settings.run_id)
    except InvalidQuestion as exc:
        raise Problem(422, str(exc), field=exc.field, errors=exc.errors) from exc
    submitter = _backends().submitter
    if isinstance(submitter, ApiSubmitter):
        submissions = submitter.submit_batch(questions)
    else:  # pragma: no cover - the api always builds an ApiSubmitter
        submissions = [submitter.submit(q) for q in questions]
    results = []
    for submission in submissions:
        SUBMISSIONS.labels(submission.source.value).inc()
        results.append(_item(submission))
    return jsonify(results=results), 200


def _item(submission: Submission) -> dict[str, Any]:
    """A batch's entry for one question: the body the single POST answers with."""
    out: dict[str, Any] = {"id": submission.question_id, "status": submission.status.value,
                           "source": submission.source.value}
    if submission.result is not None:
        out["result"] = submission.result.model_dump(mode="json")
    elif submission.source is Source.IN_FLIGHT:
        out["detail"] = "already submitted; not enqueued again"
    return out


@bp.get("/v1/questions/<raw_id>")
def get_question(raw_id: str) -> Response:
    if request.args.getlist("detail"):
        return _trace(raw_id)
    qid = parse_question_id(raw_id)
    if qid is None:
        raise Problem(400, "a question id is 32 hexadecimal characters", field="id")
    submitter = _backends().submitter
    view = question_view(submitter.store, submitter.cache, submitter.ttl_s, qid)
    if view is None:
        raise Problem(404, f"no question with id {qid}")
    return jsonify(
        id=qid,
        status=view.status.value,
        result=None if view.result is None else view.result.model_dump(mode="json"),
        attempts=None if view.attempts is None else [a.model_dump(mode="json") for a in view.attempts],
    )


def _trace(raw_id: str) -> Response:
    """``?detail=trace``: the question's timeline from the store (qaflow.core.trace)."""
    qid = parse_question_id(raw_id)
    if qid is None:
        raise Problem(400, "a question id is 32 hexadecimal characters", field="id")
    if request.args.getlist("detail") != ["trace"]:
        raise Problem(400, "detail must be given once, as detail=trace", field="detail")
    got = _backends().store.trace(qid)
    if got is None:
        raise Problem(404, f"no question with id {qid}")
    return jsonify(id=qid, status=got["status"], trace=got)


@bp.get("/v1/stats")
def stats() -> Response:
    try:
        run_id = parse_run_id(request.args.getlist("run_id"))
    except InvalidQuestion as exc:
        raise Problem(400, str(exc), field=exc.field) from exc
    s = _backends().store.stats(run_id=run_id)
    by_status = {k: int(s.by_status.get(k, 0)) for k in TERMINAL_KEYS}
    by_status["pending"] = max(0, s.questions - sum(by_status.values()))
    return jsonify(
        run_id=run_id,
        questions=s.questions,
        by_status=by_status,
        mean_score=None if s.mean_score is None else round(s.mean_score, 4),
        attempts=s.attempts,
        generations_distribution={str(k): v for k, v in sorted(s.generations_distribution.items())},
        mean_score_by_generation={str(k): round(v, 4) for k, v in sorted(s.mean_score_by_generation.items())},
        dead_letters=s.dead_letters,
        cache=cache_summary(),
    )


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document(_settings()))
