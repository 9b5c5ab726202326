"""``python -m qaflow.services.llm_worker``: the answer stage over Kafka, N calls in flight."""

from __future__ import annotations

import logging

from qaflow.core import topics
from qaflow.core.faults import keepalive_s
from qaflow.core.retry import RetryPolicy
from qaflow.core.settings import LlmWorkerSettings
from qaflow.llm import make_provider
from qaflow.pipeline.answer import AnswerStage
from qaflow.pipeline.worker import ConcurrentWorker
from qaflow.services import boot
from qaflow.services.limits import AimdLimiter, LimitedProvider, open_rpm_limiter
from qaflow.services.llm_worker import metrics
from qaflow.services.logs import configure_logging
from qaflow.services.probes import Probes
from qaflow.services.runner import install_stop_handlers, run_worker

logger = logging.getLogger("qaflow.services.llm_worker")
NAME = "llm-worker"


def main() -> int:
    s = boot.load_settings(LlmWorkerSettings, NAME)
    configure_logging(s.log_format, s.log_level, NAME)
    stop = install_stop_handlers()
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
    bus = boot.open_worker_bus(s)
    worker = ConcurrentWorker(
        "llm",
        bus.consumer(boot.group_of(s, "qaflow-llm-worker"), [topics.QUESTIONS], client_id=NAME),
        boot.MeteredProducer(bus.producer(client_id=NAME)),
        stage.handle,
        concurrency=s.llm_concurrency,
        limiter=aimd,
        keepalive_s=keepalive_s(s.kafka_max_poll_interval_ms),
        policy=boot.fault_policy(s),
        stop=stop,
    )
    probes = Probes(s.http_port, s.http_host)
    probes.details = {"service": NAME, "provider": s.llm_provider, "model": s.model}
    provider.start()
    logger.info(
        "answering with %s/%s: concurrency %d (AIMD floor %d), rpm limit %s",
        s.llm_provider,
        s.model,
        s.llm_concurrency,
        aimd.min_limit,
        s.rpm_limit or "none",
    )
    try:
        return run_worker(NAME, boot.Guarded("llm", worker), probes, stop, s.shutdown_grace_s,
                          bus_policy=boot.fault_policy(s), on_bus_error=boot.BUS_ERRORS.inc)
    finally:
        provider.close()
        bus.close()


if __name__ == "__main__":
    raise SystemExit(main())
