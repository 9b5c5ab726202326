"""The llm-worker's own part: the answer stage behind the AIMD and requests-per-minute limits.

Built by :func:`qaflow.services.service.run_service` from :data:`qaflow.core.topology.ANSWER`.
A question that already ended (a dead letter carries it: this worker's, or a predecessor's read
back at an assignment, :mod:`qaflow.services.ended`) is dropped without a call, and of two
dead letters for one question only the first goes out, so a kill between a dead letter and the
commit never ends a question twice.
"""

from __future__ import annotations

import logging

from qaflow.core.faults import keepalive_s
from qaflow.core.restore import EndedQuestions
from qaflow.core.retry import RetryPolicy
from qaflow.llm import make_provider
from qaflow.pipeline.answer import AnswerStage
from qaflow.pipeline.worker import ConcurrentWorker
from qaflow.services.ended import answer_once, dead_letter_restore
from qaflow.services.limits import AimdLimiter, LimitedProvider, open_rpm_limiter
from qaflow.services.llm_worker import metrics
from qaflow.services.service import Built, ServiceContext

logger = logging.getLogger("qaflow.services.llm_worker")


def build(ctx: ServiceContext) -> Built:
    s = ctx.settings
    aimd = AimdLimiter(
        s.llm_concurrency,
        min_limit=min(s.aimd_min_concurrency, s.llm_concurrency),
        floor_share=s.aimd_floor_share,
        recover_after_s=s.aimd_recover_after_s,
        window_s=s.aimd_window_s,
        window_calls=s.aimd_window_calls,
        min_calls=s.aimd_min_calls,
        quota_share=s.aimd_quota_share,
    )
    rpm = open_rpm_limiter(s.rpm_limit, s.cache_url, s.llm_provider, s.model)
    provider = LimitedProvider(
        make_provider(s), aimd, rpm, metrics.PrometheusObserver(s.llm_prices), retry_after_cap_s=s.retry_after_cap_s
    )
    metrics.CONCURRENCY_LIMIT.set_function(lambda: aimd.limit)
    metrics.CONCURRENCY_MAX.set(s.llm_concurrency)
    metrics.QUOTA_SHARE.set_function(lambda: aimd.quota_share)
    metrics.QUOTA_EVENTS.set_function(lambda: aimd.quota_events)
    metrics.RPM_LIMIT.set(s.rpm_limit)
    policy = RetryPolicy.from_settings(s)
    stage = AnswerStage(provider, policy, language=s.llm_language, prompt_template=s.llm_prompt_template,
                        prices=s.llm_prices, model=s.model, ledger=True)
    ended = EndedQuestions()
    worker = ConcurrentWorker(
        ctx.stage.label,
        ctx.consumer(),
        ctx.producer(),
        answer_once(stage.handle, ended, ctx.stage.label),
        concurrency=s.llm_concurrency,
        limiter=aimd,
        keepalive_s=keepalive_s(s.kafka_max_poll_interval_ms),
        policy=ctx.policy,
        stop=ctx.stop,
        restore=dead_letter_restore(ctx.bus, ended, ctx.stage.label),
    )
    ctx.probes.details.update({"provider": s.llm_provider, "model": s.model})
    provider.start()
    logger.info(
        "answering with %s/%s: concurrency %d (AIMD floor %d), rpm limit %s",
        s.llm_provider,
        s.model,
        s.llm_concurrency,
        aimd.min_limit,
        s.rpm_limit or "none",
    )
    return Built(worker, closers=(provider,))
