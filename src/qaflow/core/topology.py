"""The topology: which stage reads which topics, in which consumer group, over which backends.

This is the one declaration of the loop's wiring. Everything else derives from it or is
checked against it:

- the worker services (:func:`qaflow.services.service.run_service` takes a :class:`Stage`);
- the embedded runner (:mod:`qaflow.pipeline.embedded`);
- the dev-stack catalog (:mod:`qaflow.devstack.catalog`: which backend URLs each process gets);
- the Flink score job's source topic, group and sink topics (:mod:`qaflow.flinkjob`);
- the Helm chart's ``global.contract.services.*.backends`` and ``kafka.users.acls``
  (``tests/charts/test_chart_topology.py`` renders the chart and compares).

Names (docs/architecture.md, "Names"): a stage is named by its *role* (``answer``,
``score``, ``retry``, ``storage``), a runnable thing by its *service* name, which is also
its chart component and its ``python -m`` module. The score stage has two runners: the
``score-job`` (PyFlink, the cluster's) and the ``score-worker`` (a plain Kafka consumer,
for local runs without Flink). ``scorer`` is the model service, never the stage.

Pure data: settings classes and handler factories are import paths (``module:attribute``),
resolved by the service shell, so the core imports nothing beyond itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from qaflow.core import topics

Backend = Literal["bus", "store", "cache", "scorer", "llm"]
# The backends the chart and the dev stack hand over as URLs (QAFLOW_BUS_URL, ...).
URL_BACKENDS: tuple[Backend, ...] = ("bus", "store", "cache")


@dataclass(frozen=True, slots=True)
class Stage:
    """One runnable piece of the loop.

    ``service``: the service, chart component and KafkaUser name (``llm-worker``).
    ``role``: the stage it runs, also its ``stage`` metric label (``answer`` runs as ``llm``
    for history's sake: see ``worker_name``).
    ``inputs``/``group``: the topics it consumes and its consumer group (the default of
    ``QAFLOW_CONSUMER_GROUP``, or ``QAFLOW_FLINK_GROUP_ID`` for the job).
    ``outputs``: the topics it publishes to. ``describes``: topics it only looks at.
    ``backends``: what it needs; ``bus``, ``store`` and ``cache`` arrive as URLs.
    ``settings``: its settings class, ``module:Class``. ``handler``: its handler factory,
    ``module:function`` (workers only), called by the service shell.
    ``transactional``: it writes with Kafka transactions (the job's exactly-once sink).
    """

    service: str
    role: str
    inputs: tuple[str, ...] = ()
    group: str = ""
    outputs: tuple[str, ...] = ()
    describes: tuple[str, ...] = ()
    backends: tuple[Backend, ...] = ()
    settings: str = ""
    handler: str = ""
    worker_name: str = ""  # the name its worker loop logs and counts under (``stage`` label)
    transactional: bool = False

    @property
    def url_backends(self) -> tuple[Backend, ...]:
        """The backends handed over as URLs, in the chart's order (bus, store, cache)."""
        return tuple(b for b in URL_BACKENDS if b in self.backends)

    @property
    def label(self) -> str:
        return self.worker_name or self.role


_SETTINGS = "qaflow.core.settings"

API = Stage(
    "api",
    "submit",
    outputs=(topics.QUESTIONS,),
    backends=("bus", "store", "cache"),
    settings=f"{_SETTINGS}:ApiSettings",
)
ANSWER = Stage(
    "llm-worker",
    "answer",
    inputs=(topics.QUESTIONS,),
    group="qaflow-llm-worker",
    outputs=(topics.ANSWERS, topics.RETRY_QUOTA, topics.RETRY_OVERLOAD, topics.DEAD_LETTER, topics.CALLS),
    # The cache holds the Redis-shared requests-per-minute limit (QAFLOW_RPM_LIMIT).
    backends=("bus", "cache", "llm"),
    settings=f"{_SETTINGS}:LlmWorkerSettings",
    handler="qaflow.services.llm_worker.handler:build",
    worker_name="llm",
)
SCORE = Stage(
    "score-worker",
    "score",
    inputs=(topics.ANSWERS,),
    group="qaflow-score",
    outputs=(topics.SCORES, topics.RESULTS, topics.QUESTIONS, topics.DEAD_LETTER),
    backends=("bus", "scorer"),
    settings=f"{_SETTINGS}:ScoreWorkerSettings",
    handler="qaflow.services.score_worker.handler:build",
)
# The score stage as a PyFlink job: same topics, its own group, a transactional sink.
SCORE_JOB = Stage(
    "score-job",
    "score",
    inputs=SCORE.inputs,
    group="qaflow-score-job",
    outputs=SCORE.outputs,
    backends=("bus", "scorer"),
    settings=f"{_SETTINGS}:ScoreJobSettings",
    transactional=True,
)
RETRY = Stage(
    "retry-worker",
    "retry",
    inputs=topics.RETRY_TOPICS,
    group="qaflow-retry-worker",
    outputs=(topics.QUESTIONS, topics.DEAD_LETTER),
    backends=("bus",),
    settings=f"{_SETTINGS}:RetryWorkerSettings",
    handler="qaflow.services.retry_worker.handler:build",
)
# Dead letters are written to the store inline, never re-published.
STORAGE = Stage(
    "storage-writer",
    "storage",
    inputs=(topics.RESULTS, topics.SCORES, topics.DEAD_LETTER, topics.CALLS),
    group="qaflow-storage-writer",
    backends=("bus", "store", "cache"),
    settings=f"{_SETTINGS}:StorageWriterSettings",
    handler="qaflow.services.storage_writer.handler:build",
)
# Reads the store only; the cache hit rate comes from the api's /v1/stats over HTTP.
DASHBOARD = Stage("dashboard", "read", backends=("store",), settings=f"{_SETTINGS}:DashboardSettings")
# Off the loop: the scorer service (the model behind --scorer remote) and the traffic generator.
SCORER = Stage("scorer", "model", settings=f"{_SETTINGS}:ScorerServiceSettings")
TRAFFIC_GEN = Stage("traffic-gen", "load", settings=f"{_SETTINGS}:TrafficGenSettings")

STAGES: tuple[Stage, ...] = (API, ANSWER, SCORE, SCORE_JOB, RETRY, STORAGE, DASHBOARD, SCORER, TRAFFIC_GEN)
BY_SERVICE: dict[str, Stage] = {s.service: s for s in STAGES}
# The Kafka workers of the loop, in the order the embedded runner steps them.
WORKERS: tuple[Stage, ...] = (ANSWER, SCORE, RETRY, STORAGE)


def stage(service: str) -> Stage:
    """The stage of ``service``; ``KeyError`` naming the known ones otherwise."""
    try:
        return BY_SERVICE[service]
    except KeyError:
        msg = f"unknown service {service!r}; known: {', '.join(BY_SERVICE)}"
        raise KeyError(msg) from None
