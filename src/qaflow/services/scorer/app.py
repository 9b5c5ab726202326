"""The scorer service's app factory; gunicorn calls it once in each worker, after the fork:

    gunicorn --config python:qaflow.services.scorer.gunicorn_conf "qaflow.services.scorer.app:create_app()"

``GET /v1/info`` -> ``{"scorer": identity}``; ``POST /v1/score`` with ``{"pairs": [{"candidate",
"reference"}, ...]}`` -> ``{"scores": [...], "scorer": identity}`` (what RemoteScorer calls).
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, jsonify

from qaflow.core import plugins
from qaflow.core.errors import ConfigError, ScoringError
from qaflow.core.settings import ScorerServiceSettings, load
from qaflow.services.scorer.metrics import BATCH, TRUNCATED
from qaflow.services.scorer.model import ModelNotReady, ScorerRuntime
from qaflow.services.scorer.pairs import InvalidPairs, body_limit, parse_pairs
from qaflow.services.web.app import Problem, base_app, read_json, runtime

bp = Blueprint("scorer", __name__)


def _model() -> ScorerRuntime:
    model: ScorerRuntime = runtime(current_app)
    return model


def _scorer_or_503() -> ScorerRuntime:
    model = _model()
    try:
        model.scorer()
    except ModelNotReady as exc:
        raise Problem(503, str(exc), headers={"Retry-After": "10"}) from exc
    return model


@bp.get("/v1/info")
def info() -> Response:
    return jsonify(scorer=_scorer_or_503().scorer().identity)


@bp.post("/v1/score")
def score() -> Response:
    s = _model().settings
    try:
        pairs = parse_pairs(read_json(), s.scorer_max_batch, s.scorer_max_chars)
    except InvalidPairs as exc:
        raise Problem(413 if exc.too_many else 422, str(exc), field=exc.field) from exc
    BATCH.observe(len(pairs.candidates))
    if pairs.truncated:
        TRUNCATED.inc(pairs.truncated)
    try:
        scores, identity = _scorer_or_503().score(pairs.candidates, pairs.references)
    except ModelNotReady as exc:  # pragma: no cover - raised by _scorer_or_503 first
        raise Problem(503, str(exc), headers={"Retry-After": "10"}) from exc
    except ScoringError as exc:
        raise Problem(500, f"scoring failed: {exc}") from exc
    return jsonify(scores=scores, scorer=identity)


def create_app(settings: ScorerServiceSettings | None = None) -> Flask:
    """The scorer service, configured by QAFLOW_* variables unless ``settings`` is given.

    The model loads on first use (or when gunicorn's post_worker_init warms it), never here.
    """
    settings = settings or load(ScorerServiceSettings)
    if plugins.family("scorer").get(settings.scorer).remote:
        msg = f"QAFLOW_SCORER={settings.scorer}: the scorer service must score itself, not call a service"
        raise ConfigError(msg)
    app = base_app(__name__, ScorerRuntime(settings), body_limit(settings.scorer_max_batch, settings.scorer_max_chars))
    app.register_blueprint(bp)
    return app
