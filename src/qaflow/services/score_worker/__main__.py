"""``python -m qaflow.services.score_worker``: batched scoring and routing over Kafka.

The per-question state (last routed generation, best attempt, terminal marker) lives in
memory. Messages carry their best attempt, so a restart loses only the duplicate check for
questions in flight: a re-delivered answer may then be routed again, and the store's
upserts (results by question, attempts by question and generation) absorb the repeat.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter, Gauge, Histogram

from qaflow.core import topics
from qaflow.core.messages import ScoreRecord
from qaflow.core.settings import ScoreWorkerSettings
from qaflow.pipeline.outputs import Output
from qaflow.pipeline.score import GatePolicy, ScoreStage
from qaflow.pipeline.worker import Decoded, Worker
from qaflow.scoring import make_scorer
from qaflow.services import boot
from qaflow.services.logs import configure_logging
from qaflow.services.probes import Probes
from qaflow.services.runner import install_stop_handlers, run_worker

logger = logging.getLogger("qaflow.services.score_worker")
NAME = "score-worker"

ROUTED = Counter("qaflow_score_routed_total", "Scored answers, by where they went.", ["route"])
DUPLICATES = Counter("qaflow_score_duplicates_total", "Re-delivered answers dropped.")
SCORES = Histogram("qaflow_score_value", "Scores given.", buckets=[i / 10 for i in range(1, 11)])
BATCH_SECONDS = Histogram("qaflow_score_batch_seconds", "Time to score and route one batch.")
BATCH_SIZE = Histogram(
    "qaflow_score_batch_size", "Answers per scored batch.", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)
)
TRACKED = Gauge("qaflow_score_tracked_questions", "Questions whose state is held in memory.")
ROUTES = {topics.RESULTS: "result", topics.QUESTIONS: "regenerate"}


def main() -> int:
    s = boot.load_settings(ScoreWorkerSettings, NAME)
    configure_logging(s.log_format, s.log_level, NAME)
    stop = install_stop_handlers()
    scorer = make_scorer(s)
    scorer.start()
    stage = ScoreStage(scorer, GatePolicy(s.threshold, s.max_generations))
    TRACKED.set_function(lambda: len(stage.state))

    def score(batch: list[Decoded]) -> list[Output]:
        started = time.perf_counter()
        duplicates = stage.stats.duplicates
        out = stage.handle_batch([m for _, m in batch])
        BATCH_SECONDS.observe(time.perf_counter() - started)
        BATCH_SIZE.observe(len(batch))
        DUPLICATES.inc(stage.stats.duplicates - duplicates)
        for o in out:
            if o.topic in ROUTES:
                ROUTED.labels(ROUTES[o.topic]).inc()
            elif isinstance(o.message, ScoreRecord):
                SCORES.observe(o.message.score)
        return out

    bus = boot.open_worker_bus(s)
    worker = Worker(
        "score",
        bus.consumer(boot.group_of(s, "qaflow-score"), [topics.ANSWERS], client_id=NAME),
        boot.MeteredProducer(bus.producer(client_id=NAME)),
        score,
        max_records=s.scorer_batch_size,
        policy=boot.fault_policy(s),
        stop=stop,
    )
    probes = Probes(s.http_port, s.http_host)
    probes.details = {"service": NAME, "scorer": s.scorer}
    logger.info(
        "scoring with %s in batches of up to %d; threshold %.2f, at most %d generations",
        scorer.identity,
        s.scorer_batch_size,
        s.threshold,
        s.max_generations,
    )
    try:
        return run_worker(NAME, boot.Guarded("score", worker), probes, stop, s.shutdown_grace_s,
                          bus_policy=boot.fault_policy(s), on_bus_error=boot.BUS_ERRORS.inc)
    finally:
        scorer.close()
        bus.close()


if __name__ == "__main__":
    raise SystemExit(main())
