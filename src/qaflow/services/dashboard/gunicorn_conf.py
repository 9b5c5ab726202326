"""gunicorn config of the dashboard:

    gunicorn --config python:qaflow.services.dashboard.gunicorn_conf "qaflow.services.dashboard.app:create_app()"

Bound to ``0.0.0.0:$QAFLOW_HTTP_PORT`` (8002). A handful of viewers polling a memoised
summary: one worker with a few threads is plenty.
"""

from qaflow.core.settings import DashboardSettings, load
from qaflow.services.web.gunicorn_hooks import base_config

globals().update(base_config(load(DashboardSettings), "dashboard"))  # bind, logging, probes, prometheus hooks

workers = 1
threads = 4
timeout = 30
