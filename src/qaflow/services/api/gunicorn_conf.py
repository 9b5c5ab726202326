"""gunicorn config of the api:

    gunicorn --config python:qaflow.services.api.gunicorn_conf "qaflow.services.api.app:create_app()"

Bound to ``0.0.0.0:$QAFLOW_HTTP_PORT`` (8000). The api waits on Redis, Postgres and Kafka,
not on the CPU, so a few workers with many threads each.
"""

from qaflow.core.settings import ApiSettings, load
from qaflow.services.web.gunicorn_hooks import base_config

globals().update(base_config(load(ApiSettings), "api"))  # bind, logging, probes, prometheus hooks

workers = 2
threads = 8
timeout = 30
