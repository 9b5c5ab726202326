"""``python -m qaflow.services.retry_worker``: the retry heap over Kafka.

Its own part (gauges) is :mod:`qaflow.services.retry_worker.handler`.
"""

from __future__ import annotations

from qaflow.core.topology import RETRY
from qaflow.services.service import run_service

if __name__ == "__main__":
    raise SystemExit(run_service(RETRY))
