"""``python -m qaflow.services.storage_writer``: the storage stage over Kafka.

Its own part (store guard, metrics) is :mod:`qaflow.services.storage_writer.handler`.
"""

from __future__ import annotations

from qaflow.core.topology import STORAGE
from qaflow.services.service import run_service

if __name__ == "__main__":
    raise SystemExit(run_service(STORAGE))
