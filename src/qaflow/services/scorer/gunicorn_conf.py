"""gunicorn config of the scorer service:

    gunicorn --config python:qaflow.services.scorer.gunicorn_conf "qaflow.services.scorer.app:create_app()"

Bound to ``0.0.0.0:$QAFLOW_HTTP_PORT`` (8001). One worker: every worker holds its own copy
of the model, and torch already uses all the cores it is given (OMP_NUM_THREADS). Threads
keep the probes answering while a batch is scored; the model loads right after the fork
(post_worker_init), and /readyz is 503 until it has.
"""

from qaflow.core.settings import ScorerServiceSettings, load
from qaflow.services.web.gunicorn_hooks import base_config

_settings = load(ScorerServiceSettings)
globals().update(base_config(_settings, "scorer"))  # bind, logging, probes, prometheus hooks

workers = 1
threads = 4
timeout = max(300, int(_settings.scorer_timeout_s) + 60)  # a big batch on a CPU takes a while
