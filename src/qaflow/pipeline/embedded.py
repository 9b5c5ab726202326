"""The whole job in one process: the same workers and stages, over in-process transports.

Questions are submitted in chunks until every submitted question has a terminal result in
the store. On the in-memory bus the workers are stepped round-robin on the caller's thread
(deterministic, and no step ever waits); on a real bus each worker steps on a thread of its
own (:mod:`qaflow.pipeline.stage_threads`), so one stage's waits on Kafka, PostgreSQL or
Redis are the other stages' turns.
"""

from __future__ import annotations

import logging
import threading
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
from qaflow.pipeline.stage_threads import StageThreads
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
THREAD_IDLE_WAIT_S = 0.1  # real bus, a thread per stage: a stage's poll wait after a step that moved nothing
IN_FLIGHT = 1024  # real bus: unfinished questions before the next chunk is submitted
STALL_S = 180.0  # real bus: no question finished and none waiting to be retried for this long is a stall
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
        # _pending and _finished change on the storage stage's thread too (a real bus): a
        # chunk is submitted under this lock, so its results cannot be settled before it is counted
        self._changed = threading.Condition()

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
        with self._changed:
            if result.question_id in self._pending:
                self._pending.discard(result.question_id)
                self._finished += 1
                self.progress(self._finished, None)
                self._changed.notify_all()

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
        threads = None if self.s.bus_url.startswith("memory://") else StageThreads(
            workers, idle_wait_s=THREAD_IDLE_WAIT_S)
        in_flight = CHUNK if threads is None else IN_FLIGHT
        try:
            if threads is not None:
                threads.start()
            chunk: list[Question] = []
            for question in questions:
                chunk.append(question)
                if len(chunk) >= CHUNK:
                    self._submit(chunk, submitter, summary, ids, total)
                    chunk = []
                    self._advance(workers, threads, until_pending_below=in_flight)
            self._submit(chunk, submitter, summary, ids, total)
            self._advance(workers, threads, until_pending_below=1)
            if threads is None:
                self._drain_storage(workers[3])
            else:
                self._await_ledger(threads)
        finally:
            try:
                if threads is not None:
                    threads.stop()
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
        with self._changed:  # one store read and one flush per chunk
            self._count_submitted(submit_many(submitter, messages), summary, ids, total)

    def _count_submitted(
        self, submitted: Iterable[Any], summary: RunSummary, ids: list[str], total: int | None
    ) -> None:
        for sub in submitted:
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

    def _advance(self, workers: tuple[ConcurrentWorker, Worker, RetryWorker, Worker], threads: StageThreads | None,
                 until_pending_below: int) -> None:
        if threads is None:
            self._pump(workers, until_pending_below)
        else:
            self._await(threads, workers[2], until_pending_below)

    def _await(self, threads: StageThreads, retry: RetryWorker, until_pending_below: int) -> None:
        """Wait (the stages stepping on their threads) until fewer than ``until_pending_below``
        questions are unfinished. Raises what a stage raised, or RuntimeError after ``STALL_S``
        with no question finished and none held for a retry."""
        last_progress, seen = time.monotonic(), self._finished
        with self._changed:
            while len(self._pending) >= until_pending_below:
                threads.check()
                self._changed.wait(0.5)
                if self._finished != seen or retry.waiting:
                    last_progress, seen = time.monotonic(), self._finished
                elif time.monotonic() - last_progress > STALL_S:
                    msg = f"pipeline made no progress with {len(self._pending)} question(s) unfinished"
                    raise RuntimeError(msg)
        threads.check()

    def _await_ledger(self, threads: StageThreads) -> None:
        """Wait until the store holds the call records of every LLM call this process made (or 60 s)."""
        deadline = time.monotonic() + 60.0
        while self.store.call_stats(run_id=self.run_id).calls < self.answer_stage.stats.calls:
            threads.check()
            if time.monotonic() > deadline:
                logger.warning("the call ledger is still short of this run's calls; the summary counts what it holds")
                return
            time.sleep(0.05)

    def _pump(self, workers: tuple[ConcurrentWorker, Worker, RetryWorker, Worker], until_pending_below: int) -> None:
        """In-memory bus: step the workers round-robin until fewer than ``until_pending_below``
        questions are unfinished. Nothing can arrive later there, so a quiet round with work left
        and no retry waiting is a bug (RuntimeError)."""
        llm, score, retry, storage = workers
        while len(self._pending) >= until_pending_below:
            # Let the LLM stage take everything it can first, so the scorer gets full batches.
            if self._drain(llm) + sum(w.step(0.0) for w in (score, retry, storage)):
                continue
            due = retry.next_due()
            if due is None:
                msg = f"pipeline made no progress with {len(self._pending)} question(s) unfinished"
                raise RuntimeError(msg)
            time.sleep(max(0.0, min(1.0, due - time.time())))

    def _drain_storage(self, storage: Worker) -> None:
        """In-memory bus: write the call records still on the bus before summarising."""
        while storage.step(0.0):
            pass

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
