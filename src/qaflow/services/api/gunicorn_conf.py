"""gunicorn config of the api:

    gunicorn --config python:qaflow.services.api.gunicorn_conf "qaflow.services.api.app:create_app()"

Bound to ``$QAFLOW_HTTP_HOST:$QAFLOW_HTTP_PORT`` (127.0.0.1:8000; the chart sets 0.0.0.0).
The api faces clients directly (no buffering proxy is assumed), so it runs gevent workers:
a slow or idle client holds a greenlet, not a thread, and the reads of each connection are
bounded in time (see :mod:`qaflow.services.web.gunicorn_worker`). It waits on Redis,
Postgres and Kafka, not on the CPU, so a few workers with many connections each.
"""

from qaflow.core.settings import ApiSettings, load
from qaflow.services.web.gunicorn_hooks import base_config

globals().update(base_config(load(ApiSettings), "api"))  # bind, logging, probes, prometheus hooks

worker_class = "qaflow.services.web.gunicorn_worker.QaflowGeventWorker"
workers = 2
worker_connections = 1000  # per worker: open connections, slow ones included
keepalive = 5  # seconds: idle keep-alive connections, and the request line + headers, must arrive within it
timeout = 30
