"""The job graph::

    KafkaSource(qa.answers) -> decode --(side output: dead letters)-------------------+
                                 |                                                     |
                                 v                                                     v
      Table: vectorised scoring UDF (Arrow batches) -> keyBy(question id) -> route -> Kafka table sink
                                                                      (topic per row, raw key = question id)

Operators carrying state have fixed uids (DataStream) or plan-derived ones (Table), so a
checkpoint or savepoint of one build restores into the next.
"""

from __future__ import annotations

import logging
from typing import Any

from pyflink.common import Configuration, Types, WatermarkStrategy
from pyflink.common.serialization import SimpleStringSchema
from pyflink.datastream import CheckpointingMode, StreamExecutionEnvironment
from pyflink.datastream.connectors.kafka import KafkaOffsetResetStrategy, KafkaOffsetsInitializer, KafkaSource
from pyflink.table import DataTypes, Schema, StreamTableEnvironment, TableDescriptor
from pyflink.table.expressions import col
from pyflink.table.udf import udf

from qaflow.core.topology import SCORE_JOB
from qaflow.flinkjob.args import DEFAULT_CHECKPOINT_INTERVAL_MS, JobConfig
from qaflow.flinkjob.flinkconf import flink_configuration
from qaflow.flinkjob.operators import (
    DEAD_LETTERS,
    OUT_TYPE,
    SCORED_RESULT_TYPE,
    TO_SCORE_TYPE,
    DecodeAnswers,
    RouteAnswers,
    ScoreBatches,
)

logger = logging.getLogger(__name__)

PARTITION_DISCOVERY_MS = "60000"
OUTPUTS_TABLE = "qaflow_outputs"
# Where the score job reads and writes: qaflow.core.topology.SCORE_JOB.
INPUT_TOPIC, = SCORE_JOB.inputs
OUTPUT_TOPICS = SCORE_JOB.outputs


def environment(cfg: JobConfig) -> StreamExecutionEnvironment:
    conf = Configuration()
    for key, value in flink_configuration(cfg).items():
        conf.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    checkpoints = env.get_checkpoint_config()
    if cfg.checkpoint_interval_ms is None and checkpoints.get_checkpoint_interval() <= 0:
        # Neither the job's options nor the cluster's configuration chose: checkpoint anyway.
        env.enable_checkpointing(DEFAULT_CHECKPOINT_INTERVAL_MS, CheckpointingMode.EXACTLY_ONCE)
    if checkpoints.get_checkpoint_interval() <= 0 and cfg.checkpoint_interval_ms == 0:
        logger.warning("checkpointing is off: no state survives a restart, and no offsets are committed")
    if cfg.jars:  # also loads them into this JVM, where the connector builders run
        env.add_jars(*cfg.jars)
    return env


def starting_offsets(name: str) -> KafkaOffsetsInitializer:
    if name == "committed-or-earliest":
        return KafkaOffsetsInitializer.committed_offsets(KafkaOffsetResetStrategy.EARLIEST)
    if name == "committed-or-latest":
        return KafkaOffsetsInitializer.committed_offsets(KafkaOffsetResetStrategy.LATEST)
    if name == "earliest":
        return KafkaOffsetsInitializer.earliest()
    return KafkaOffsetsInitializer.latest()


def source(cfg: JobConfig) -> KafkaSource:
    builder = (
        KafkaSource.builder()
        .set_bootstrap_servers(cfg.bootstrap_servers)
        .set_topics(cfg.topics[INPUT_TOPIC])
        .set_group_id(cfg.settings.flink_group_id)
        .set_starting_offsets(starting_offsets(cfg.settings.flink_starting_offsets))
        .set_value_only_deserializer(SimpleStringSchema())
        .set_property("partition.discovery.interval.ms", PARTITION_DISCOVERY_MS)
        .set_property("client.id.prefix", cfg.settings.flink_group_id)
    )
    for key, value in cfg.kafka_properties.items():
        builder.set_property(key, value)
    return builder.build()


def sink_descriptor(cfg: JobConfig) -> TableDescriptor:
    """The Kafka sink, as a table: ``key`` and ``value`` written raw, ``topic`` per row.

    A Table sink because PyFlink's DataStream ``KafkaSink`` cannot take the key from a Python
    record: its key schemas see the whole row (the CSV and JSON row schemas insist on the
    row's arity), so records would go out unkeyed, breaking per-question ordering and
    co-partitioning downstream. The SQL connector's ``raw`` key format with ``key.fields``
    writes the question id bytes exactly as the other producers do (Kafka's default
    partitioner hashes them the same way), and its writable ``topic`` metadata routes each
    row among the allowed ``topic`` list; a null key (a poison record without a question
    id) stays null.
    """
    allowed = ";".join(cfg.topics[t] for t in OUTPUT_TOPICS)
    schema = (
        Schema.new_builder()
        .column("key", DataTypes.STRING())
        .column("value", DataTypes.STRING())
        .column_by_metadata("topic", DataTypes.STRING())
        .build()
    )
    builder = (
        TableDescriptor.for_connector("kafka")
        .schema(schema)
        .option("topic", allowed)
        .option("properties.bootstrap.servers", cfg.bootstrap_servers)
        .option("properties.client.id", f"{cfg.settings.flink_group_id}-sink")
        .option("key.format", "raw")
        .option("key.fields", "key")
        .option("value.format", "raw")
        .option("value.fields-include", "EXCEPT_KEY")
        .option("sink.partitioner", "default")
        .option("sink.delivery-guarantee", cfg.settings.flink_delivery_guarantee)
    )
    if cfg.settings.flink_delivery_guarantee == "exactly-once":
        builder.option("sink.transactional-id-prefix", cfg.settings.flink_transactional_id_prefix)
        # Longer than a checkpoint plus a restart, within the broker's transaction.max.timeout.ms.
        builder.option("properties.transaction.timeout.ms", str(15 * 60 * 1000))
    for key, value in cfg.kafka_properties.items():
        builder.option(f"properties.{key}", value)
    return builder.build()


def build(env: StreamExecutionEnvironment, cfg: JobConfig) -> None:
    """Add the score job's operators to ``env``."""
    raw = env.from_source(source(cfg), WatermarkStrategy.no_watermarks(), "answers").uid("answers-source")
    decoded = raw.process(DecodeAnswers(cfg.topics), output_type=TO_SCORE_TYPE).uid("decode").name("decode")

    t_env = StreamTableEnvironment.create(env)
    score = udf(ScoreBatches(cfg.scorer), result_type=SCORED_RESULT_TYPE, func_type="pandas")
    table = t_env.from_data_stream(decoded).select(
        col("qid"), col("payload"), col("error"), score(col("candidate"), col("reference")).alias("scored")
    )
    routed = (
        t_env.to_data_stream(table)
        .key_by(lambda row: row[0], key_type=Types.STRING())
        .process(
            RouteAnswers(cfg.policy, cfg.topics, cfg.settings.flink_open_state_ttl_s,
                         cfg.settings.flink_terminal_state_ttl_s),
            output_type=OUT_TYPE,
        )
        .uid("route")
        .name("route")
    )
    outputs = routed.union(decoded.get_side_output(DEAD_LETTERS))

    t_env.create_temporary_table(OUTPUTS_TABLE, sink_descriptor(cfg))
    statements = t_env.create_statement_set()
    statements.add_insert(OUTPUTS_TABLE, t_env.from_data_stream(outputs))
    statements.attach_as_datastream()


def run(cfg: JobConfig) -> Any:
    logger.info("score job config: %s", cfg.redacted())
    env = environment(cfg)
    build(env, cfg)
    return env.execute(cfg.settings.flink_job_name)
