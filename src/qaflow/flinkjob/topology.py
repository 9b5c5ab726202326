"""The job graph::

    KafkaSource(qa.answers) -> decode --(dead letters)------------------------------+
                                 |                                                   |
                                 v                                                   v
               Table: vectorised scoring UDF (Arrow batches) -> keyBy(question id) -> route -> KafkaSink
                                                                                     (topic per record, key = question id)

Operators carrying state have fixed uids, so a checkpoint or savepoint of one build restores
into the next.
"""

from __future__ import annotations

import logging
from typing import Any

from pyflink.common import Configuration, Types, WatermarkStrategy
from pyflink.common.serialization import SerializationSchema, SimpleStringSchema
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.connectors.base import DeliveryGuarantee
from pyflink.datastream.connectors.kafka import (
    KafkaOffsetResetStrategy,
    KafkaOffsetsInitializer,
    KafkaRecordSerializationSchema,
    KafkaSink,
    KafkaSource,
)
from pyflink.datastream.formats.csv import CsvRowSerializationSchema
from pyflink.java_gateway import get_gateway
from pyflink.table import StreamTableEnvironment
from pyflink.table.expressions import col
from pyflink.table.udf import udf

from qaflow.core import topics as logical
from qaflow.flinkjob.args import JobConfig
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


def environment(cfg: JobConfig) -> StreamExecutionEnvironment:
    conf = Configuration()
    for key, value in flink_configuration(cfg).items():
        conf.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
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
        .set_topics(cfg.topics[logical.ANSWERS])
        .set_group_id(cfg.group_id)
        .set_starting_offsets(starting_offsets(cfg.starting_offsets))
        .set_value_only_deserializer(SimpleStringSchema())
        .set_property("partition.discovery.interval.ms", PARTITION_DISCOVERY_MS)
        .set_property("client.id.prefix", cfg.group_id)
    )
    for key, value in cfg.kafka_properties.items():
        builder.set_property(key, value)
    return builder.build()


def record_serializer() -> KafkaRecordSerializationSchema:
    """Rows of :data:`OUT_TYPE` -> Kafka records: topic, key and value from the row's fields.

    PyFlink offers no key extractor for Python records, so the key is written by a CSV row
    schema that sees only the first field (no quoting, no line end: the raw question id), and
    the value by Flink's own second-column wrapper around ``SimpleStringSchema`` (the raw
    JSON). The topic selector picks the third field.
    """
    key = (
        CsvRowSerializationSchema.Builder(Types.ROW_NAMED(["key"], [Types.STRING()]))
        .disable_quote_character()
        .set_line_delimiter("")
        .build()
    )
    jvm = get_gateway().jvm
    value = SerializationSchema(
        jvm.org.apache.flink.python.util.PythonConnectorUtils.SecondColumnSerializationSchema(
            SimpleStringSchema()._j_serialization_schema
        )
    )
    return (
        KafkaRecordSerializationSchema.builder()
        .set_topic_selector(lambda row: row[2])
        .set_key_serialization_schema(key)
        .set_value_serialization_schema(value)
        .build()
    )


def sink(cfg: JobConfig) -> KafkaSink:
    builder = (
        KafkaSink.builder()
        .set_bootstrap_servers(cfg.bootstrap_servers)
        .set_record_serializer(record_serializer())
        .set_property("client.id", f"{cfg.group_id}-sink")
    )
    if cfg.delivery_guarantee == "exactly-once":
        builder.set_delivery_guarantee(DeliveryGuarantee.EXACTLY_ONCE)
        builder.set_transactional_id_prefix(cfg.transactional_id_prefix)
        # Longer than a checkpoint plus a restart, within the broker's transaction.max.timeout.ms.
        builder.set_property("transaction.timeout.ms", str(15 * 60 * 1000))
    else:
        builder.set_delivery_guarantee(DeliveryGuarantee.AT_LEAST_ONCE)
    for key, value in cfg.kafka_properties.items():
        builder.set_property(key, value)
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
    scored = t_env.to_data_stream(table)

    routed = (
        scored.key_by(lambda row: row[0], key_type=Types.STRING())
        .process(
            RouteAnswers(cfg.policy, cfg.topics, cfg.open_state_ttl_s, cfg.terminal_state_ttl_s),
            output_type=OUT_TYPE,
        )
        .uid("route")
        .name("route")
    )
    routed.union(decoded.get_side_output(DEAD_LETTERS)).sink_to(sink(cfg)).uid("outputs-sink").name("outputs")


def run(cfg: JobConfig) -> Any:
    logger.info("score job config: %s", cfg.redacted())
    env = environment(cfg)
    build(env, cfg)
    return env.execute(cfg.job_name)
