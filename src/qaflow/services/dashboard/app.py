"""The dashboard's app factory; gunicorn calls it once in each worker, after the fork:

    gunicorn --config python:qaflow.services.dashboard.gunicorn_conf "qaflow.services.dashboard.app:create_app()"
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template

from qaflow.core.settings import DashboardSettings, load
from qaflow.services.dashboard.runtime import DashboardRuntime
from qaflow.services.web.app import base_app, runtime

bp = Blueprint("dashboard", __name__, template_folder="templates")

MAX_BODY_BYTES = 16 * 1024  # the dashboard takes no request bodies


def _runtime() -> DashboardRuntime:
    rt: DashboardRuntime = runtime(current_app)
    return rt


@bp.app_template_global()
def pick(data: Any, path: str) -> Any:
    """``pick(summary, "totals.validated")``; None when any step is missing."""
    for key in path.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


@bp.app_template_filter()
def fmt(value: Any, kind: str = "num") -> str:
    """The server-side twin of the page's fmt(): the page reads right before its script runs."""
    if kind == "text":  # formatted by the runtime already (money: qaflow.core.cost.format_usd)
        return "\u2013" if value is None else str(value)
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "\u2013"
    if kind == "int":
        return f"{round(value):,}"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "score":
        return f"{value:.3f}"
    if kind == "s":
        if value < 1:
            return f"{round(value * 1000)} ms"
        return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"
    if kind == "time":
        return time.strftime("%H:%M:%S UTC", time.gmtime(value))
    return f"{value:,.2f}".rstrip("0").rstrip(".")


@bp.get("/")
def page() -> str:
    return render_template("dashboard.html", summary=_runtime().summary())


@bp.get("/api/summary")
def summary() -> Response:
    response = jsonify(_runtime().summary())
    response.headers["Cache-Control"] = "no-store"
    return response


def create_app(settings: DashboardSettings | None = None) -> Flask:
    """The dashboard, configured by QAFLOW_* variables unless ``settings`` is given. Connects lazily."""
    settings = settings or load(DashboardSettings)
    app = base_app(__name__, DashboardRuntime(settings), MAX_BODY_BYTES)
    app.register_blueprint(bp)
    return app
