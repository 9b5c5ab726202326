"""``python -m qaflow.services.llm_worker``: the answer stage over Kafka, N calls in flight.

Its own part (limits, metrics) is :mod:`qaflow.services.llm_worker.handler`.
"""

from __future__ import annotations

from qaflow.core.topology import ANSWER
from qaflow.services.service import run_service

if __name__ == "__main__":
    raise SystemExit(run_service(ANSWER))
