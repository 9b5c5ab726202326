"""The api's app factory; gunicorn calls it once in each worker, after the fork:

    gunicorn --config python:qaflow.services.api.gunicorn_conf "qaflow.services.api.app:create_app()"
"""

from __future__ import annotations

from flask import Flask

from qaflow.core.settings import ApiSettings, load
from qaflow.services.api.backends import ApiBackends
from qaflow.services.api.routes import bp
from qaflow.services.web.app import base_app


def create_app(settings: ApiSettings | None = None) -> Flask:
    """The api, configured by QAFLOW_* variables unless ``settings`` is given. Connects lazily."""
    settings = settings or load(ApiSettings)
    app = base_app(__name__, ApiBackends(settings), settings.max_body_bytes)
    app.register_blueprint(bp)
    return app
