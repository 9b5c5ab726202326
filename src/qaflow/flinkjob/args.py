"""The score job's command line, with ``QAFLOW_*`` environment fallbacks, into a :class:`JobConfig`.

Precedence: a command-line option, else its ``QAFLOW_*`` variable, else the default. The
variables are declared by :class:`ScoreJobSettings` (registered with
:mod:`qaflow.core.settings`, which reads the environment and names the variable in every
error). Options that only make sense per run (jars, extra Flink options, the state to
restore) have no variable.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qaflow.core.errors import ConfigError
from qaflow.core.score_step import GatePolicy
from qaflow.core.settings import (
    BackendSettings,
    DeliveryGuarantee,
    ScoreJobSettings,
    ScorerSettings,
    StartingOffsets,
    load,
)
from qaflow.core.topology import SCORE_JOB
from qaflow.flinkjob.records import TopicMap

# The Kafka client inside flink-sql-connector-kafka is relocated: JAAS modules too.
SHADED_KAFKA = "org.apache.flink.kafka.shaded.org.apache.kafka"
LOGIN_MODULES = {
    "PLAIN": f"{SHADED_KAFKA}.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": f"{SHADED_KAFKA}.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": f"{SHADED_KAFKA}.common.security.scram.ScramLoginModule",
}
DEFAULT_CHECKPOINT_INTERVAL_MS = 10_000


@dataclass(frozen=True, slots=True)
class JobConfig:
    """Everything the topology needs, resolved and checked."""

    bootstrap_servers: str
    kafka_properties: Mapping[str, str]  # security options for source and sink; may hold a password
    topics: TopicMap
    group_id: str
    starting_offsets: StartingOffsets
    checkpoint_interval_ms: int | None  # None: the cluster's setting, else DEFAULT_CHECKPOINT_INTERVAL_MS
    checkpoint_dir: str
    checkpoint_retention: str
    parallelism: int
    batch_size: int
    batch_wait_ms: int
    delivery_guarantee: DeliveryGuarantee
    transactional_id_prefix: str
    open_state_ttl_s: int
    terminal_state_ttl_s: int
    job_name: str
    policy: GatePolicy
    scorer: ScorerSettings
    jars: tuple[str, ...] = ()
    restore_from: str = ""
    flink_conf: Mapping[str, str] = field(default_factory=dict)

    def redacted(self) -> dict[str, Any]:
        """For the start-up log line: no password."""
        shown = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("kafka_properties", "scorer")}
        shown["topics"] = dict(self.topics.names)
        shown["kafka_properties"] = {k: ("***" if "jaas" in k else v) for k, v in self.kafka_properties.items()}
        shown["scorer"] = self.scorer.scorer
        return shown


# (option, settings field, help). The variable is QAFLOW_<FIELD>; options without a field
# have no variable. Help texts say what the option changes, and the default.
_OPTIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("--bootstrap-servers", "bus_url", {"metavar": "HOST:PORT[,...]",
     "help": "Kafka brokers; required. The variable takes the kafka://host:port[,...] form."}),
    ("--topic-prefix", "topic_prefix", {"help": "Prefix for every topic name, e.g. 'test1.'. Default none."}),
    ("--group-id", "flink_group_id", {"help": "Consumer group of the qa.answers source. Offsets are committed "
     "to it on each checkpoint (for monitoring lag; restores use the checkpoint). Default qaflow-score-job."}),
    ("--starting-offsets", "flink_starting_offsets", {"choices": StartingOffsets.__args__,
     "help": "Where a job started without state reads qa.answers from: the group's committed offsets, "
     "falling back to earliest/latest, or always earliest/latest. Default committed-or-earliest."}),
    ("--threshold", "threshold", {"type": float,
     "help": "Score at or above which an answer is validated. Default 0.80."}),
    ("--max-generations", "max_generations", {"type": int,
     "help": "LLM answers per question at most; below the threshold at this generation = exhausted. Default 3."}),
    ("--scorer", "scorer", {"choices": ("bertscore", "lexical", "remote"),
     "help": "bertscore (in the Python worker; needs qaflow[bertscore]), lexical (token F1, tests) or remote "
     "(the scorer service at --scorer-url). Default bertscore."}),
    ("--scorer-url", "scorer_url", {"help": "Base URL of the scorer service (--scorer remote)."}),
    ("--scorer-model", "scorer_model", {
     "help": "bert-score model directory or hub id; empty = the packaged all-MiniLM-L6-v2."}),
    ("--scorer-device", "scorer_device", {"help": "auto, cpu or cuda[:N] for --scorer bertscore. Default auto."}),
    ("--batch-size", "flink_batch_size", {"type": int, "help": "Pairs per scoring call (the Arrow batch of the "
     "vectorised UDF). Default 0 = QAFLOW_SCORER_BATCH_SIZE (64)."}),
    ("--batch-wait-ms", "flink_batch_wait_ms", {"type": int, "help": "Longest time a partial batch waits before "
     "it is scored (the Python bundle time; also bounds the latency each Python operator adds). Default 1000."}),
    ("--checkpoint-interval-s", "flink_checkpoint_interval_s", {"type": float,
     "help": "Checkpoint interval in seconds. Default: the cluster's execution.checkpointing.interval (the "
     "FlinkDeployment's), else 10. 0 = set none (no checkpoints unless the cluster sets an interval)."}),
    ("--checkpoint-dir", "flink_checkpoint_dir", {"help": "Checkpoint storage, e.g. file:///data/ckpt or "
     "s3://bucket/ckpt. Default: the cluster's execution.checkpointing.dir (in-memory when unset)."}),
    ("--checkpoint-retention", "flink_checkpoint_retention", {"choices": ("retain", "delete"),
     "help": "retain: the last checkpoint survives a cancel, so the job can restart from it. Default retain."}),
    ("--parallelism", "flink_parallelism", {"type": int,
     "help": "Job parallelism; 0 = the cluster's parallelism.default. Default 0."}),
    ("--delivery-guarantee", "flink_delivery_guarantee", {"choices": DeliveryGuarantee.__args__,
     "help": "Kafka sink guarantee. at-least-once: records are visible at once, a restart may repeat the "
     "outputs since the last checkpoint (downstream is idempotent). exactly-once: Kafka transactions committed "
     "on checkpoints; readers need isolation.level=read_committed. Default at-least-once."}),
    ("--transactional-id-prefix", "flink_transactional_id_prefix", {
     "help": "Transactional id prefix for exactly-once; keep it stable across restarts. Default qaflow-score-job."}),
    ("--open-state-ttl-s", "flink_open_state_ttl_s", {"type": int, "help": "Seconds the keyed state of a question "
     "that is still regenerating survives without an update; 0 = forever. Default 86400."}),
    ("--terminal-state-ttl-s", "flink_terminal_state_ttl_s", {"type": int, "help": "Seconds the marker of a "
     "finished question is kept to drop re-delivered answers; 0 = forever. Default 604800 (the topics' retention)."}),
    ("--job-name", "flink_job_name", {"help": "Flink job name. Default qaflow-score."}),
]

# --<name>-topic for each topic of the job (qaflow.core.topology.SCORE_JOB): qa.dead-letter -> dead-letter.
_TOPIC_OPTIONS = {name.removeprefix("qa.").replace(".", "-"): name for name in (*SCORE_JOB.inputs, *SCORE_JOB.outputs)}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="score_job.py",
        description="qaflow score job: reads LLM answers from qa.answers, scores them against the reference "
        "in batches, keeps per-question state, and writes qa.scores (every attempt), qa.results (validated or "
        "exhausted), qa.questions (regenerations) and qa.dead-letter (bad records).",
        epilog="Every option with a variable falls back to it (QAFLOW_<NAME>, see docs/flink-job.md); "
        "other QAFLOW_SCORER_* variables (batch size, max chars, timeout, layers) apply too.",
    )
    for option, name, kwargs in _OPTIONS:
        kwargs = dict(kwargs)
        kwargs["help"] = f"{kwargs['help']} [env QAFLOW_{name.upper()}]"
        kwargs.setdefault("metavar", option.removeprefix("--").upper().replace("-", "_"))
        p.add_argument(option, dest=name, default=None, **kwargs)
    for name, logical in _TOPIC_OPTIONS.items():
        p.add_argument(f"--{name}-topic", dest=f"topic_{name.replace('-', '_')}", default=None, metavar="NAME",
                       help=f"Name of {logical} on the cluster; overrides the prefix. Default <prefix>{logical}.")
    p.add_argument("--jars", action="append", default=[], metavar="URL",
                   help="Connector jar to add (file:///...), repeatable; not needed when it is in flink/lib.")
    p.add_argument("--restore-from", default="", metavar="PATH",
                   help="Checkpoint or savepoint to start from (execution.state-recovery.path).")
    p.add_argument("-D", "--flink-conf", action="append", default=[], metavar="KEY=VALUE",
                   help="Extra Flink option, repeatable; applied last, so it wins.")
    return p


def _bootstrap(url: str) -> str:
    if not url or url.startswith("memory://"):
        msg = "--bootstrap-servers (or QAFLOW_BUS_URL=kafka://host:port) is required"
        raise ConfigError(msg)
    from qaflow.bus.kafka import parse_url

    return ",".join(parse_url(url if url.startswith("kafka://") else f"kafka://{url}"))


def kafka_properties(settings: BackendSettings) -> dict[str, str]:
    """Java Kafka client security options (the shaded client of the SQL connector jar)."""
    protocol = settings.kafka_security_protocol
    props = {"security.protocol": protocol}
    if protocol.startswith("SASL_"):
        # The settings already checked the mechanism and that the credentials are there.
        mechanism = settings.kafka_sasl_mechanism
        assert settings.kafka_password is not None
        user = settings.kafka_username.replace('"', '\\"')
        password = settings.kafka_password.get_secret_value().replace('"', '\\"')
        props["sasl.mechanism"] = mechanism
        props["sasl.jaas.config"] = f'{LOGIN_MODULES[mechanism]} required username="{user}" password="{password}";'
    return props


def _flink_conf(pairs: Sequence[str]) -> dict[str, str]:
    conf = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            msg = f"--flink-conf {pair!r}: expected KEY=VALUE"
            raise ConfigError(msg)
        conf[key.strip()] = value.strip()
    return conf


def parse(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> JobConfig:
    """Command line + environment -> :class:`JobConfig`, or :class:`ConfigError` naming the culprit."""
    ns = parser().parse_args(argv)
    overrides = {name: getattr(ns, name) for _, name, _ in _OPTIONS}
    if overrides["bus_url"] and not overrides["bus_url"].startswith("kafka://"):
        overrides["bus_url"] = "kafka://" + overrides["bus_url"]
    settings = load(ScoreJobSettings, os.environ if environ is None else environ, **overrides)
    scorer = ScorerSettings.model_validate({name: getattr(settings, name) for name in ScorerSettings.model_fields})
    topic_overrides = {
        logical: getattr(ns, f"topic_{opt.replace('-', '_')}") for opt, logical in _TOPIC_OPTIONS.items()
    }
    return JobConfig(
        bootstrap_servers=_bootstrap(settings.bus_url),
        kafka_properties=kafka_properties(settings),
        topics=TopicMap.build(settings.topic_prefix, {k: v for k, v in topic_overrides.items() if v}),
        group_id=settings.flink_group_id,
        starting_offsets=settings.flink_starting_offsets,
        checkpoint_interval_ms=(
            None if settings.flink_checkpoint_interval_s is None else round(settings.flink_checkpoint_interval_s * 1000)
        ),
        checkpoint_dir=settings.flink_checkpoint_dir,
        checkpoint_retention=settings.flink_checkpoint_retention,
        parallelism=settings.flink_parallelism,
        batch_size=settings.flink_batch_size or settings.scorer_batch_size,
        batch_wait_ms=settings.flink_batch_wait_ms,
        delivery_guarantee=settings.flink_delivery_guarantee,
        transactional_id_prefix=settings.flink_transactional_id_prefix,
        open_state_ttl_s=settings.flink_open_state_ttl_s,
        terminal_state_ttl_s=settings.flink_terminal_state_ttl_s,
        job_name=settings.flink_job_name,
        policy=GatePolicy(threshold=settings.threshold, max_generations=settings.max_generations),
        scorer=scorer,
        jars=tuple(ns.jars),
        restore_from=ns.restore_from,
        flink_conf=_flink_conf(ns.flink_conf),
    )
