"""``python -m qaflow.services.score_worker``: the score stage over Kafka, batched (no Flink).

The per-question state (last routed generation, best attempt, terminal marker) lives in
memory. Messages carry their best attempt, so a restart loses only the duplicate check for
questions in flight; it is rebuilt from the stage's own outputs since the last commit
(:mod:`qaflow.core.score_restore`) before the re-delivered answers are handled, so they are
dropped instead of ending their question twice.

Its own part (scorer, metrics) is :mod:`qaflow.services.score_worker.handler`.
"""

from __future__ import annotations

from qaflow.core.topology import SCORE
from qaflow.services.service import run_service

if __name__ == "__main__":
    raise SystemExit(run_service(SCORE))
