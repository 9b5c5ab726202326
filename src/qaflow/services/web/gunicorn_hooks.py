"""gunicorn settings and server hooks shared by the api, scorer and dashboard configs.

Workers load the app after the fork (no ``preload_app``), so every connection, and the
scorer's model, belongs to one worker process. Prometheus multiprocess mode: each worker
writes its metrics to files in ``PROMETHEUS_MULTIPROC_DIR``; ``/metrics`` adds them up.
The master empties that directory at start (files from an earlier run would be counted
again) and marks each exited worker dead, so its live gauges stop counting.

Workers and threads are the config's defaults; override them the gunicorn way
(``--workers 4`` or ``GUNICORN_CMD_ARGS="--workers 4 --threads 16"``).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from pathlib import Path
from typing import Any

from qaflow.core.settings import ServiceSettings
from qaflow.services.logs import configure_logging
from qaflow.services.web import gunicorn_errors

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def base_config(settings: ServiceSettings, service: str) -> dict[str, Any]:
    """Settings every qaflow gunicorn config shares; the service's config adds workers and timeouts."""
    level = settings.log_level.upper()

    def on_starting(server: Any) -> None:
        configure_logging(settings.log_format, settings.log_level, service)
        directory = os.environ.get(MULTIPROC_ENV)
        if directory:
            path = Path(directory)
            path.mkdir(parents=True, exist_ok=True)
            stale = list(path.glob("*.db"))
            for f in stale:
                f.unlink()
            logger.info("prometheus multiprocess mode in %s (%d stale file(s) removed)", path, len(stale))

    def post_fork(server: Any, worker: Any) -> None:
        # The master's logging survives the fork; configure again so a reload picks up changes.
        # prometheus_client notices the new pid by itself and opens this worker's own files.
        configure_logging(settings.log_format, settings.log_level, service)
        gunicorn_errors.install()  # gunicorn's own 400/414/431 replies as problem documents
        skip_disabled_access_log(worker.log)

    def post_worker_init(worker: Any) -> None:
        """Warm the app up (connections, model) in the background; /readyz says when it is done."""
        service_runtime = getattr(worker.wsgi, "extensions", {}).get("qaflow")
        set_concurrency = getattr(service_runtime, "set_concurrency", None)
        if set_concurrency is not None:  # the api sizes its connection pools by this
            set_concurrency(concurrency(worker.cfg))
        if service_runtime is not None:
            threading.Thread(target=_warm, args=(service_runtime,), name="warm-up", daemon=True).start()

    def worker_exit(server: Any, worker: Any) -> None:
        service_runtime = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("qaflow")
        if service_runtime is not None:
            service_runtime.close()

    def child_exit(server: Any, worker: Any) -> None:
        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]

    return {
        "bind": f"{settings.http_host}:{settings.http_port}",
        "worker_class": "gthread",
        "graceful_timeout": max(1, math.ceil(settings.shutdown_grace_s)),
        "keepalive": 5,
        "loglevel": settings.log_level,
        "control_socket_disable": True,  # gunicorn >= 25: no socket in $HOME (read-only in containers)
        # gunicorn's own loggers hand their records to the root logger that configure_logging sets up.
        # No access log: requests are counted in /metrics, and errors are logged by the app.
        "logconfig_dict": {
            "version": 1,
            "disable_existing_loggers": False,
            "root": {"level": level, "handlers": []},
            "loggers": {
                "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
                "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
            },
            "handlers": {},
            "formatters": {},
        },
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,  # noqa: S108 - heartbeat file
        "on_starting": on_starting,
        "post_fork": post_fork,
        "post_worker_init": post_worker_init,
        "worker_exit": worker_exit,
        "child_exit": child_exit,
    }


def skip_disabled_access_log(log: Any) -> None:
    """Stop gunicorn building each request's access-log line when ``gunicorn.access`` drops it.

    gunicorn formats the access-log atoms of every request whenever a ``logconfig_dict`` is
    given, whatever the level of ``gunicorn.access`` (WARNING here: nothing is written); that
    was about 2% of the api's CPU per new POST (issue 13 profile). gunicorn keeps the
    decision in ``_access_log_enabled`` (27.0 here); a version without it is left as it is.
    """
    if hasattr(log, "_access_log_enabled") and not logging.getLogger("gunicorn.access").isEnabledFor(logging.INFO):
        log._access_log_enabled = False


def concurrency(cfg: Any) -> int:
    """Requests one worker handles at once: its threads (gthread, sync), or its connections (gevent, eventlet)."""
    from gunicorn.workers.base_async import AsyncWorker

    return int(cfg.worker_connections if issubclass(cfg.worker_class, AsyncWorker) else cfg.threads)


def _warm(service_runtime: Any) -> None:
    try:
        service_runtime.warm_up()
    except Exception as exc:  # the next request or /readyz tries again
        logger.warning("warm-up failed, will retry on demand: %s", exc)
