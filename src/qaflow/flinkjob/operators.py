"""The PyFlink functions of the score job: thin shells over :mod:`qaflow.flinkjob.records`.

Metrics (all in the user group ``qaflow``; see docs/flink-job.md for the Prometheus names):

- decode: ``answers_received``, ``dead_lettered``;
- score: ``score_batches``, ``scored_pairs``, ``score_batch_ms_total``, gauge ``last_score_batch_size``;
- route: ``validated``, ``regenerated``, ``exhausted``, ``duplicates``, ``failed``,
  ``score_milli_total`` and ``bucket.scores`` with a ``bucket`` label (the score's tenth, "0".."90").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
from pyflink.common import Row, Time, Types
from pyflink.datastream import KeyedProcessFunction, OutputTag, ProcessFunction
from pyflink.datastream.state import StateTtlConfig, ValueStateDescriptor
from pyflink.table import DataTypes
from pyflink.table.udf import FunctionContext, ScalarFunction

from qaflow.core.outputs import Output
from qaflow.core.score_step import GatePolicy, Outcome
from qaflow.core.settings import ScorerSettings
from qaflow.flinkjob.records import (
    TopicMap,
    decode_answer,
    decode_state,
    encode_state,
    pack,
    route_scored,
    score_batch,
    score_bucket,
    unpack,
)

logger = logging.getLogger(__name__)

METRIC_GROUP = "qaflow"

# Rows between operators. ``payload`` is the decoded message, packed (records.pack);
# ``error`` is "" unless the record skips the scorer.
TO_SCORE_FIELDS = ["qid", "payload", "candidate", "reference", "error"]
TO_SCORE_TYPE = Types.ROW_NAMED(
    TO_SCORE_FIELDS,
    [Types.STRING(), Types.PRIMITIVE_ARRAY(Types.BYTE()), Types.STRING(), Types.STRING(), Types.STRING()],
)
# The scorer's identity travels as a typed map, not as JSON to parse again per row.
SCORED_RESULT_TYPE = DataTypes.ROW(
    [
        DataTypes.FIELD("score", DataTypes.DOUBLE()),
        DataTypes.FIELD("scorer", DataTypes.MAP(DataTypes.STRING(), DataTypes.STRING())),
        DataTypes.FIELD("error", DataTypes.STRING()),
    ]
)
# What the Kafka sink writes: the key (question id, None when unknown), the value, the topic.
OUT_FIELDS = ["key", "value", "topic"]
OUT_TYPE = Types.ROW_NAMED(OUT_FIELDS, [Types.STRING()] * 3)
DEAD_LETTERS = OutputTag("dead-letters", OUT_TYPE)


def out_row(out: Output, topics: TopicMap) -> Row:
    """The sink's row: the one place the job encodes what it emits."""
    return Row(out.key, out.value.decode("utf-8"), topics[out.topic])


class DecodeAnswers(ProcessFunction):
    """Raw JSON -> a row to score; records without a usable question -> the dead-letter side output."""

    def __init__(self, topics: TopicMap) -> None:
        self.topics = topics
        self.origin = topics["qa.answers"]

    def open(self, runtime_context: Any) -> None:
        group = runtime_context.get_metrics_group().add_group(METRIC_GROUP)
        self.received = group.counter("answers_received")
        self.dead = group.counter("dead_lettered")

    def process_element(self, value: str, ctx: ProcessFunction.Context) -> Iterator[Any]:
        self.received.inc()
        got = decode_answer(value, self.origin)
        if isinstance(got, Output):
            self.dead.inc()
            logger.warning("dead letter from %s key=%s", self.origin, got.key)
            yield DEAD_LETTERS, out_row(got, self.topics)
        else:
            yield Row(got.question_id, pack(got), got.candidate, got.reference, got.error)


class ScoreBatches(ScalarFunction):
    """Vectorised (pandas) UDF: one Arrow batch of pairs -> one ``scorer.score`` call."""

    def __init__(self, settings: ScorerSettings) -> None:
        self.settings = settings
        self.scorer: Any = None

    def open(self, function_context: FunctionContext) -> None:
        from qaflow.scoring import make_scorer

        self.scorer = make_scorer(self.settings)
        self.scorer.start()
        group = function_context.get_metric_group().add_group(METRIC_GROUP)
        self.batches = group.counter("score_batches")
        self.pairs = group.counter("scored_pairs")
        self.batch_ms = group.counter("score_batch_ms_total")
        self.last_size = 0
        group.gauge("last_score_batch_size", lambda: self.last_size)

    def eval(self, candidate: pd.Series, reference: pd.Series) -> pd.DataFrame:
        began = time.perf_counter()
        got = score_batch(self.scorer, candidate.tolist(), reference.tolist())
        self.last_size = len(candidate)
        self.batches.inc()
        self.pairs.inc(len(candidate))
        self.batch_ms.inc(round((time.perf_counter() - began) * 1000))
        n = len(candidate)
        return pd.DataFrame({"score": got.scores, "scorer": [got.identity] * n, "error": got.errors})

    def close(self) -> None:
        if self.scorer is not None:
            self.scorer.close()


def ttl_config(seconds: int) -> StateTtlConfig:
    """Expire after ``seconds`` without a write; expired values are never returned.

    Cleanup: on full snapshots and in the background (incrementally on the heap backend,
    in compaction with RocksDB).
    """
    return (
        StateTtlConfig.new_builder(Time.seconds(seconds))
        .set_update_type(StateTtlConfig.UpdateType.OnCreateAndWrite)
        .set_state_visibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
        .cleanup_full_snapshot()
        .build()
    )


class RouteAnswers(KeyedProcessFunction):
    """Keyed by question id: fold the scored answer into the state, emit what ``score_step`` says.

    Two ``ValueState[str]`` (JSON) per question: ``open`` while it regenerates (best attempt
    so far) and ``done`` once terminal, a small marker that drops re-deliveries. Each has its
    own TTL, so a finished question costs a few bytes for the dedup window only.
    """

    def __init__(self, policy: GatePolicy, topics: TopicMap, open_ttl_s: int, terminal_ttl_s: int) -> None:
        self.policy = policy
        self.topics = topics
        self.origin = topics["qa.answers"]
        self.open_ttl_s = open_ttl_s
        self.terminal_ttl_s = terminal_ttl_s

    def open(self, runtime_context: Any) -> None:
        open_desc = ValueStateDescriptor("open", Types.STRING())
        done_desc = ValueStateDescriptor("done", Types.STRING())
        if self.open_ttl_s:
            open_desc.enable_time_to_live(ttl_config(self.open_ttl_s))
        if self.terminal_ttl_s:
            done_desc.enable_time_to_live(ttl_config(self.terminal_ttl_s))
        self.open_state = runtime_context.get_state(open_desc)
        self.done_state = runtime_context.get_state(done_desc)
        group = runtime_context.get_metrics_group().add_group(METRIC_GROUP)
        self.counters = {o: group.counter(name) for o, name in _OUTCOME_METRICS.items()}
        # mean score = score_milli_total / 1000 / (validated + regenerated + exhausted)
        self.score_sum = group.counter("score_milli_total")
        self.buckets = {str(b): group.add_group("bucket", str(b)).counter("scores") for b in range(0, 100, 10)}

    def process_element(self, value: Row, ctx: KeyedProcessFunction.Context) -> Iterator[Row]:
        packed, error, scored = value[1], value[2], value[3]
        score, scorer, score_error = (scored[0], scored[1], scored[2]) if scored is not None else (None, None, "")
        message, raw = unpack(bytes(packed))
        done = self.done_state.value()
        state = decode_state(done) if done else decode_state(self.open_state.value())
        step = route_scored(
            state, message, score if score is not None else float("nan"), scorer or {},
            error or score_error or "", self.policy, self.origin, raw,
        )
        if step.state is not state and step.state is not None:  # store what the step kept
            if step.state.terminal:
                self.done_state.update(encode_state(step.state))
                self.open_state.clear()
            else:
                self.open_state.update(encode_state(step.state))
        self.counters[step.outcome].inc()
        if step.outcome not in (Outcome.DUPLICATE, Outcome.FAILED) and step.score is not None:
            self.buckets[score_bucket(step.score)].inc()
            self.score_sum.inc(max(0, round(step.score * 1000)))
        for out in step.outputs:
            yield out_row(out, self.topics)


_OUTCOME_METRICS = {
    Outcome.VALIDATED: "validated",
    Outcome.REGENERATED: "regenerated",
    Outcome.EXHAUSTED: "exhausted",
    Outcome.DUPLICATE: "duplicates",
    Outcome.FAILED: "failed",
}
