"""What the three web services (api, scorer, dashboard) share.

- every error is an RFC 9457 problem document (``application/problem+json``), never an
  HTML page: ``{"type", "title", "status", "detail"}`` plus ``field``/``errors`` for 422s;
- ``/healthz`` (the process serves requests) and ``/readyz`` (its dependencies answer);
- ``/metrics`` and request metrics (see :mod:`qaflow.services.web.prom`).

Each app keeps a :class:`Runtime` in ``app.extensions["qaflow"]``; the gunicorn hooks in
:mod:`qaflow.services.web.gunicorn_hooks` warm it up after the fork and close it on exit.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
from typing import Any, Protocol

from flask import Flask, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from qaflow.core.errors import BusError, QaflowError
from qaflow.services.web.prom import install_request_metrics, metrics_registry

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
EXTENSION = "qaflow"


class Runtime(Protocol):
    """A service's per-process connections: opened lazily, after gunicorn forks."""

    def warm_up(self) -> None:
        """Open connections / load the model now instead of on the first request."""

    def ready(self) -> dict[str, str]:
        """Each dependency: ``"ok"`` or the reason it is not usable."""

    def close(self) -> None: ...


class Problem(Exception):
    """An error answered as a problem document; ``field`` names the offending input."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        field: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.errors = errors
        self.headers = headers or {}


class Unavailable(QaflowError):
    """A dependency cannot be used right now: answered 503 with Retry-After."""

    retriable = True

    def __init__(self, dependency: str, reason: str) -> None:
        super().__init__(f"{dependency}: {reason}")
        self.dependency = dependency


def problem_response(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    body = {"type": "about:blank", "title": HTTP_STATUS_CODES.get(status, "Error"), "status": status,
            "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    response = jsonify(body)
    response.status_code = status
    response.content_type = PROBLEM_JSON
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def unavailable_dependency(exc: BaseException) -> str | None:
    """A short name for a dependency outage (answered 503), or None for a bug (500)."""
    if isinstance(exc, Unavailable):
        return exc.dependency
    if isinstance(exc, BusError):
        return "message bus"
    if isinstance(exc, sqlite3.OperationalError):
        return "store"
    psycopg2 = sys.modules.get("psycopg2")
    if psycopg2 is not None and isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
        return "store"
    return None


def _bad_framing(exc: BaseException) -> bool:
    """An error of gunicorn's HTTP parser raised while the app reads the body (InvalidChunkSize,
    or the body ending before its announced length)."""
    errors = sys.modules.get("gunicorn.http.errors")
    return errors is not None and isinstance(exc, errors.ParseException | errors.NoMoreData)


def install_errors(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        return problem_response(exc.status, exc.detail, exc.headers, field=exc.field, errors=exc.errors)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        code = exc.code or 500
        kept = {k: v for k, v in exc.get_headers() if k in ("Allow", "Retry-After", "WWW-Authenticate")}
        detail = exc.description or HTTP_STATUS_CODES.get(code, "error")
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        if code == 413 and limit:
            detail = f"request body larger than {limit} bytes"
        return problem_response(code, detail, kept)

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):  # pragma: no cover - routed to _http by Flask
            return _http(exc)
        if _bad_framing(exc):  # gunicorn could not decode the body (bad chunked encoding)
            return problem_response(400, f"malformed request body framing: {type(exc).__name__}")
        dependency = unavailable_dependency(exc)
        if dependency is not None:
            logger.warning("%s %s: %s unavailable: %s", request.method, request.path, dependency, exc)
            return problem_response(503, f"{dependency} unavailable, try again later", {"Retry-After": "5"})
        logger.exception("%s %s failed", request.method, request.path)
        return problem_response(500, "internal error (logged on the server)")


def read_json() -> Any:
    """The request body as JSON: 415 unless it says JSON, 413 above ``MAX_CONTENT_LENGTH``,
    400 when it is not UTF-8 or not JSON (NaN and Infinity, which JSON lacks, included)."""
    if not request.is_json:
        raise Problem(415, f"Content-Type must be application/json, got {request.mimetype or 'none'!r}")
    try:
        raw = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    except ClientDisconnected as exc:  # werkzeug's 400, raised while handling the read's OSError
        if isinstance(exc.__context__, TimeoutError):  # the client stopped sending (socket timeout)
            raise Problem(408, "request body not received in time") from exc
        raise
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(400, f"body is not valid UTF-8 (byte {exc.start})") from exc
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise Problem(400, f"malformed JSON: {exc}") from exc


def _no_constant(name: str) -> Any:
    msg = f"{name} is not JSON"
    raise ValueError(msg)


def runtime(app: Flask) -> Any:
    return app.extensions[EXTENSION]


def install_probes(app: Flask) -> None:
    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", pid=os.getpid())

    @app.get("/readyz")
    def readyz() -> Response:
        checks = runtime(app).ready()
        ok = all(v == "ok" for v in checks.values())
        response = jsonify(status="ok" if ok else "unavailable", checks=checks)
        response.status_code = 200 if ok else 503
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(metrics_registry()), mimetype=CONTENT_TYPE_LATEST)


def base_app(name: str, service: Runtime, max_body_bytes: int) -> Flask:
    """A Flask app with JSON errors, probes, /metrics and request metrics installed."""
    app = Flask(name)
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION] = service
    install_errors(app)
    install_request_metrics(app)
    install_probes(app)
    return app

