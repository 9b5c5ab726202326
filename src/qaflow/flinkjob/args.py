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

from qaflow.cli.options import Option, add_arguments, given_flags
from qaflow.cli.options import overrides as options_overrides
from qaflow.core.errors import ConfigError
from qaflow.core.score_step import GatePolicy
from qaflow.core.settings import BackendSettings, ScoreJobSettings, ScorerSettings, load
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
    """The job's settings, plus what the command line and the environment resolve into."""

    settings: ScoreJobSettings  # every QAFLOW_* setting of the job (flink_* and the rest)
    bootstrap_servers: str
    kafka_properties: Mapping[str, str]  # security options for source and sink; may hold a password
    topics: TopicMap
    jars: tuple[str, ...] = ()
    restore_from: str = ""
    flink_conf: Mapping[str, str] = field(default_factory=dict)

    @property
    def policy(self) -> GatePolicy:
        return GatePolicy(threshold=self.settings.threshold, max_generations=self.settings.max_generations)

    @property
    def scorer(self) -> ScorerSettings:
        return ScorerSettings.model_validate({n: getattr(self.settings, n) for n in ScorerSettings.model_fields})

    @property
    def batch_size(self) -> int:
        """Pairs per scoring call: QAFLOW_FLINK_BATCH_SIZE, else QAFLOW_SCORER_BATCH_SIZE."""
        return self.settings.flink_batch_size or self.settings.scorer_batch_size

    @property
    def checkpoint_interval_ms(self) -> int | None:
        """None: the cluster's setting, else DEFAULT_CHECKPOINT_INTERVAL_MS."""
        interval_s = self.settings.flink_checkpoint_interval_s
        return None if interval_s is None else round(interval_s * 1000)

    def redacted(self) -> dict[str, Any]:
        """For the start-up log line: no password."""
        shown: dict[str, Any] = {k: v for k, v in self.settings.model_dump().items() if not k.startswith("kafka_")}
        shown.update(bootstrap_servers=self.bootstrap_servers, topics=dict(self.topics.names), jars=self.jars,
                     restore_from=self.restore_from, flink_conf=dict(self.flink_conf))
        shown["kafka_properties"] = {k: ("***" if "jaas" in k else v) for k, v in self.kafka_properties.items()}
        return shown


# (option, settings field, what the command line adds to the field's description). The variable
# is QAFLOW_<FIELD>; help, choices and the default come from the field (qaflow.cli.options).
_OPTIONS: list[tuple[str, str, str]] = [
    ("--bootstrap-servers", "bus_url", "The option takes HOST:PORT[,...], the variable the kafka:// form; required."),
    ("--topic-prefix", "topic_prefix", ""),
    ("--group-id", "flink_group_id", "Offsets are committed to it on each checkpoint (for monitoring lag; "
     "restores use the checkpoint)."),
    ("--starting-offsets", "flink_starting_offsets", "committed-or-*: the group's committed offsets, falling back "
     "to earliest/latest; earliest/latest: always."),
    ("--threshold", "threshold", ""),
    ("--max-generations", "max_generations", "Below the threshold at this generation = exhausted."),
    ("--scorer", "scorer", "bertscore runs in the Python worker."),
    ("--scorer-url", "scorer_url", ""),
    ("--scorer-model", "scorer_model", ""),
    ("--scorer-device", "scorer_device", ""),
    ("--batch-size", "flink_batch_size", "The Arrow batch of the vectorised UDF."),
    ("--batch-wait-ms", "flink_batch_wait_ms", "Also bounds the latency each Python operator adds."),
    ("--checkpoint-interval-s", "flink_checkpoint_interval_s", "The cluster's is its "
     "execution.checkpointing.interval (the FlinkDeployment's); with 0 there are no checkpoints unless it sets one."),
    ("--checkpoint-dir", "flink_checkpoint_dir", "E.g. file:///data/ckpt or s3://bucket/ckpt; the cluster's is its "
     "execution.checkpointing.dir (in-memory when unset)."),
    ("--checkpoint-retention", "flink_checkpoint_retention", "retain lets the job restart from it."),
    ("--parallelism", "flink_parallelism", "The cluster's is its parallelism.default."),
    ("--delivery-guarantee", "flink_delivery_guarantee", "at-least-once: records are visible at once, a restart "
     "may repeat the outputs since the last checkpoint (downstream is idempotent). exactly-once: Kafka transactions "
     "committed on checkpoints; readers need isolation.level=read_committed."),
    ("--transactional-id-prefix", "flink_transactional_id_prefix", "Keep it stable across restarts."),
    ("--open-state-ttl-s", "flink_open_state_ttl_s", ""),
    ("--terminal-state-ttl-s", "flink_terminal_state_ttl_s", "Keep it at least the topics' retention."),
    ("--job-name", "flink_job_name", ""),
]
OPTIONS = [Option(flag, name, note, metavar="HOST:PORT[,...]" if name == "bus_url" else "")
           for flag, name, note in _OPTIONS]

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
    add_arguments(p, ScoreJobSettings, OPTIONS)
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
    props: dict[str, str] = {"security.protocol": protocol}
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
    overrides = options_overrides(ns, OPTIONS)
    if overrides["bus_url"] and not overrides["bus_url"].startswith("kafka://"):
        overrides["bus_url"] = "kafka://" + overrides["bus_url"]
    settings = load(ScoreJobSettings, os.environ if environ is None else environ,
                    flags=given_flags(ns, OPTIONS), **overrides)
    topic_overrides = {
        logical: getattr(ns, f"topic_{opt.replace('-', '_')}") for opt, logical in _TOPIC_OPTIONS.items()
    }
    return JobConfig(
        settings=settings,
        bootstrap_servers=_bootstrap(settings.bus_url),
        kafka_properties=kafka_properties(settings),
        topics=TopicMap.build(settings.topic_prefix, {k: v for k, v in topic_overrides.items() if v}),
        jars=tuple(ns.jars),
        restore_from=ns.restore_from,
        flink_conf=_flink_conf(ns.flink_conf),
    )
