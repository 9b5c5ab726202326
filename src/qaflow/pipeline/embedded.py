"""The whole job in one process: the same workers and stages, over in-process transports.

Questions are submitted in chunks; the workers are stepped round-robin until every
submitted question has a terminal result in the store.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from qaflow.bus import open_bus
from qaflow.cache import open_cache
from qaflow.core import topics
from qaflow.core.faults import FaultPolicy, keepalive_s
from qaflow.core.messages import QuestionMessage, ResultMessage
from qaflow.core.question import Question
from qaflow.core.retry import RetryPolicy
from qaflow.core.score_step import GatePolicy
from qaflow.core.settings import EmbeddedSettings
from qaflow.core.topology import ANSWER, RETRY, SCORE, STORAGE
from qaflow.llm import make_provider
from qaflow.llm.base import LlmProvider
from qaflow.pipeline.answer import AnswerStage
from qaflow.pipeline.retry_worker import RetryWorker
from qaflow.pipeline.score import ScoreStage
from qaflow.pipeline.storage import StorageStage
from qaflow.pipeline.submit import Source, Submitter
from qaflow.pipeline.submit_many import submit_many
from qaflow.pipeline.summary import RunSummary
from qaflow.pipeline.worker import ConcurrentWorker, Decoded, Worker
from qaflow.scoring import make_scorer
from qaflow.scoring.base import Scorer
from qaflow.scoring.lazy import LazyScorer
from qaflow.store import open_store

logger = logging.getLogger(__name__)

CHUNK = 128
QUIET_POLL_S = 0.02  # poll wait of each stage after a round that moved nothing (real bus only)
COMMIT_INTERVAL_S = 0.25  # real bus: offsets committed at most this often (and when a stage is idle)
Progress = Callable[[int, int | None], None]  # (finished, total or None while unknown)


class EmbeddedPipeline:
    def __init__(
        self,
        settings: EmbeddedSettings,
        *,
        provider: LlmProvider | None = None,
        scorer: Scorer | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.s = settings
        self.run_id = settings.run_id or f"run-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.bus = open_bus(settings.bus_url, settings)
        self.store = open_store(settings.store_url)
        self.cache = open_cache(settings.cache_url)
        self.provider = provider or make_provider(settings)
        inner = scorer or make_scorer(settings)
        # Reported while (or if, when every answer comes from the store) the model is not loaded;
        # the scorer's own `described` names it as its identity will (name, model).
        described = {**getattr(inner, "described", {"name": inner.name}), "loaded": "no"}
        self.scorer = LazyScorer(inner, described)
        self.progress = progress or (lambda done, total: None)
        self._pending: set[str] = set()
        self.question_ids: list[str] = []
        self._finished = 0

    def _workers(self) -> tuple[ConcurrentWorker, Worker, RetryWorker, Worker]:
        s, bus = self.s, self.bus
        policy = FaultPolicy.for_poll_interval(s.kafka_max_poll_interval_ms)
        self.answer_stage = AnswerStage(
            self.provider, RetryPolicy.from_settings(s), language=s.llm_language, prompt_template=s.llm_prompt_template,
            prices=s.llm_prices, model=s.model, ledger=True,
        )
        self.score_stage = ScoreStage(self.scorer, GatePolicy(s.threshold, s.max_generations))
        self.storage_stage = StorageStage(self.store, self.cache, s.cache_ttl_s)
        llm = ConcurrentWorker(
            ANSWER.label,
            bus.consumer(ANSWER.group, list(ANSWER.inputs)),
            bus.producer(),
            self.answer_stage.handle,
            concurrency=s.llm_concurrency,
            keepalive_s=keepalive_s(s.kafka_max_poll_interval_ms),
            policy=policy,
        )
        score = Worker(
            SCORE.label,
            bus.consumer(SCORE.group, list(SCORE.inputs)),
            bus.producer(),
            lambda batch: self.score_stage.handle_batch([m for _, m in batch]),
            max_records=s.scorer_batch_size,
            policy=policy,
        )
        retry = RetryWorker(
            bus.consumer(RETRY.group, list(RETRY.inputs)),
            bus.producer(),
            s.max_delivery_attempts,
            policy=policy,
        )
        storage = Worker(
            STORAGE.label,
            bus.consumer(STORAGE.group, list(STORAGE.inputs)),
            bus.producer(),
            self._store_batch,
            max_records=512,
            inline_dead_letters=True,
            policy=policy,
        )
        return llm, score, retry, storage

    def _store_batch(self, batch: list[Decoded]) -> list[Any]:
        written = self.storage_stage.handle_batch([m for _, m in batch])
        for r in written.results:
            self._settle(r)
        return []

    def _settle(self, result: ResultMessage) -> None:
        if result.question_id in self._pending:
            self._pending.discard(result.question_id)
            self._finished += 1
            self.progress(self._finished, None)

    def run(self, questions: Iterable[Question], total: int | None = None) -> RunSummary:
        started = time.perf_counter()
        self.scorer.preload()  # the model loads while the first questions are submitted and answered
        for part in (self.bus, self.store, self.cache, self.provider, self.scorer):
            part.start()
        self.bus.ensure_topics(topics.default_specs(self.s.kafka_partitions, self.s.kafka_retention_ms))
        producer = self.bus.producer()
        producer.start()
        submitter = Submitter(self.store, self.cache, producer, self.s.cache_ttl_s)
        workers = self._workers()
        for w in workers:
            if not self.s.bus_url.startswith("memory://"):
                w.commit_interval_s = COMMIT_INTERVAL_S  # a broker round trip per step was a tenth of the run
            w.start()
        self.store.start_run(self.run_id, self._config())
        summary = RunSummary(run_id=self.run_id, threshold=self.s.threshold, max_generations=self.s.max_generations)
        ids: list[str] = []
        try:
            chunk: list[Question] = []
            for question in questions:
                chunk.append(question)
                if len(chunk) >= CHUNK:
                    self._submit(chunk, submitter, summary, ids, total)
                    chunk = []
                    self._pump(workers, until_pending_below=CHUNK)
            self._submit(chunk, submitter, summary, ids, total)
            self._pump(workers, until_pending_below=1)
            self._drain_storage(workers[3])
        finally:
            for w in workers:
                w.close()
            producer.close()
        self.question_ids = sorted(set(ids))
        self._summarise(summary, ids, time.perf_counter() - started)
        self.store.finish_run(self.run_id, summary.to_dict())
        return summary

    def close(self) -> None:
        for part in (self.scorer, self.provider, self.cache, self.store, self.bus):
            part.close()

    def _submit(
        self, chunk: list[Question], submitter: Submitter, summary: RunSummary, ids: list[str], total: int | None
    ) -> None:
        messages = [
            QuestionMessage.new(q.title, q.content, q.reference_answer, category=q.category, run_id=self.run_id)
            for q in chunk
        ]
        for sub in submit_many(submitter, messages):  # one store read and one flush per chunk
            summary.questions += 1
            ids.append(sub.question_id)
            if sub.source in (Source.CACHE, Source.STORE):
                summary.cache_hits += 1
                summary.answered_from[sub.source.value] = summary.answered_from.get(sub.source.value, 0) + 1
                self._finished += 1
            elif sub.source is Source.QUEUED:
                self._pending.add(sub.question_id)
            else:
                summary.answered_from["duplicate"] = summary.answered_from.get("duplicate", 0) + 1
                self._finished += 1
        self.progress(self._finished, total)

    def _pump(self, workers: tuple[ConcurrentWorker, Worker, RetryWorker, Worker], until_pending_below: int) -> None:
        """Step the workers until fewer than ``until_pending_below`` questions are unfinished.

        On the in-memory bus nothing can arrive later, so a quiet round with work left is a
        bug; on a real bus, consumers need time to join their groups, so only a long stall is.
        """
        llm, score, retry, storage = workers
        in_memory = self.s.bus_url.startswith("memory://")
        stall_limit_s = 0.0 if in_memory else 180.0
        last_progress = time.monotonic()
        wait = 0.0
        while len(self._pending) >= until_pending_below:
            # Let the LLM stage take everything it can first, so the scorer gets full batches.
            # No poll waits while records flow (each stage's wait used to idle the loop, issue 13);
            # a real bus gets a short one only after a round that moved nothing.
            moved = self._drain(llm) + sum(w.step(wait) for w in (score, retry, storage))
            if moved:
                wait = 0.0
                last_progress = time.monotonic()
                continue
            wait = 0.0 if in_memory else QUIET_POLL_S
            due = retry.next_due()
            if due is not None:
                time.sleep(max(0.0, min(1.0, due - time.time())))
                last_progress = time.monotonic()
                continue
            if time.monotonic() - last_progress > stall_limit_s:
                msg = f"pipeline made no progress with {len(self._pending)} question(s) unfinished"
                raise RuntimeError(msg)

    def _drain_storage(self, storage: Worker) -> None:
        """Write the call records still on the bus before summarising: on the in-memory bus until
        nothing moves; on Kafka until the ledger holds the calls this process made (or 60 s)."""
        in_memory = self.s.bus_url.startswith("memory://")
        deadline = time.monotonic() + 60.0
        while True:
            if storage.step(0.0 if in_memory else 0.2):
                continue
            if in_memory or self.store.call_stats(run_id=self.run_id).calls >= self.answer_stage.stats.calls:
                return
            if time.monotonic() > deadline:
                logger.warning("the call ledger is still short of this run's calls; the summary counts what it holds")
                return

    @staticmethod
    def _drain(llm: ConcurrentWorker) -> int:
        moved = 0
        while True:
            polled = llm.step(0.0 if llm.idle else 0.05)
            moved += polled
            if not polled and llm.idle:
                return moved

    def _config(self) -> dict[str, Any]:
        return {
            "threshold": self.s.threshold,
            "max_generations": self.s.max_generations,
            "max_delivery_attempts": self.s.max_delivery_attempts,
            "llm": {"provider": self.s.llm_provider, "model": self.s.model},
            "scorer": self.scorer.identity,
        }

    def _summarise(self, summary: RunSummary, ids: list[str], elapsed: float) -> None:
        unique = sorted(set(ids))
        stats = self.store.stats(question_ids=unique)
        summary.unique_questions = len(unique)
        summary.validated = stats.by_status.get("validated", 0)
        summary.exhausted = stats.by_status.get("exhausted", 0)
        summary.failed = stats.by_status.get("failed", 0)
        summary.failure_reasons = self.store.failure_reasons(unique) if summary.failed else []
        summary.add_calls(self.store.call_stats(run_id=self.run_id))  # the call ledger: exact retry counts
        summary.mean_score_by_generation = stats.mean_score_by_generation
        summary.mean_first_score = stats.mean_score_by_generation.get(1)
        summary.mean_final_score = stats.mean_score
        if summary.mean_first_score is not None and summary.mean_final_score is not None:
            summary.quality_gain = summary.mean_final_score - summary.mean_first_score
        summary.dead_letters = stats.dead_letters
        summary.truncated = stats.truncated
        summary.elapsed_s = elapsed
        summary.questions_per_s = summary.questions / elapsed if elapsed > 0 else 0.0
        summary.scorer = dict(self.scorer.identity)
        summary.llm = {"provider": self.s.llm_provider, "model": self.s.model}
