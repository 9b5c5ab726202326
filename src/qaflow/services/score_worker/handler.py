"""The score-worker's own part: the scorer, batched scoring and routing, and its metrics.

Built by :func:`qaflow.services.service.run_service` from :data:`qaflow.core.topology.SCORE`.
The per-question state lives in memory (see the package's ``__main__``); before the first
answers of newly assigned partitions are handled, it is rebuilt from the stage's own recent
outputs (:mod:`qaflow.core.score_restore`), so answers re-delivered after a crash are dropped
as duplicates instead of ending their question a second time.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter, Gauge, Histogram

from qaflow.core import topics
from qaflow.core.messages import ScoreRecord
from qaflow.core.outputs import Output
from qaflow.core.score_restore import RESTORE_TOPICS, fold_outputs
from qaflow.core.score_step import GatePolicy
from qaflow.pipeline.score import ScoreStage
from qaflow.pipeline.worker import RESTORE_MARGIN_MS, Decoded, Worker
from qaflow.scoring import make_scorer
from qaflow.services.service import Built, ServiceContext

logger = logging.getLogger("qaflow.services.score_worker")

ROUTED = Counter("qaflow_score_routed_total", "Scored answers, by where they went.", ["route"])
DUPLICATES = Counter("qaflow_score_duplicates_total", "Re-delivered answers dropped.")
SCORES = Histogram("qaflow_score_value", "Scores given.", buckets=[i / 10 for i in range(1, 11)])
BATCH_SECONDS = Histogram("qaflow_score_batch_seconds", "Time to score and route one batch.")
BATCH_SIZE = Histogram(
    "qaflow_score_batch_size", "Answers per scored batch.", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)
)
TRACKED = Gauge("qaflow_score_tracked_questions", "Questions whose state is held in memory.")
RESTORED = Counter("qaflow_score_restored_total", "Questions whose state was rebuilt from the stage's own outputs.",
                   ["as"])
RESTORE_SECONDS = Histogram("qaflow_score_restore_seconds", "Time to read and fold the outputs at an assignment.")
ROUTES = {topics.RESULTS: "result", topics.QUESTIONS: "regenerate"}


def build(ctx: ServiceContext) -> Built:
    s = ctx.settings
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

    # A previous owner that committed at T emitted nothing for uncommitted records later than its
    # next commit was due, or its eviction: T + the commit interval + max.poll.interval.ms.
    horizon_ms = s.commit_interval_ms + s.kafka_max_poll_interval_ms + RESTORE_MARGIN_MS

    def restore(since_ms: int, last_commit_ms: int | None) -> None:
        started = time.perf_counter()
        until_ms = None if last_commit_ms is None else last_commit_ms + horizon_ms
        records = ctx.bus.read_since(RESTORE_TOPICS, since_ms, until_ms)
        outputs = ((r.topic, r.key, r.value) for r in records)
        stats = fold_outputs(stage.state, outputs)
        took = time.perf_counter() - started
        RESTORE_SECONDS.observe(took)
        RESTORED.labels("ended").inc(stats.ended)
        RESTORED.labels("advanced").inc(stats.advanced)
        logger.info(
            "duplicate check rebuilt from %d output record(s) stamped %d-%s ms: %d question(s) ended, "
            "%d advanced, %d undecodable skipped (%.2f s)",
            stats.records, since_ms, "now" if until_ms is None else until_ms, stats.ended, stats.advanced,
            stats.skipped, took,
        )

    worker = Worker(
        ctx.stage.label,
        ctx.consumer(),
        ctx.producer(),
        score,
        max_records=s.scorer_batch_size,
        policy=ctx.policy,
        stop=ctx.stop,
        restore=restore,
    )
    ctx.probes.details["scorer"] = s.scorer
    logger.info(
        "scoring with %s in batches of up to %d; threshold %.2f, at most %d generations",
        scorer.identity,
        s.scorer_batch_size,
        s.threshold,
        s.max_generations,
    )
    return Built(worker, closers=(scorer,))
