"""Typed, frozen settings, read from the environment here and nowhere else.

Every variable is ``QAFLOW_<FIELD>``. Groups of fields (pipeline, retry, llm, scorer,
backends) are mixed into one settings class per service, so each service sees exactly
what it needs and the variable list below is the contract the Helm chart renders.

:func:`load` fails fast: a bad value raises :class:`ConfigError` naming the variable, and
an unknown ``QAFLOW_*`` variable (a typo) is an error too.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from qaflow.core import plugins
from qaflow.core.errors import ConfigError
from qaflow.core.topology import SCORE_JOB

PREFIX = "QAFLOW_"
Fraction = float  # documented as [0, 1] by Field bounds below


class _Group(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="ignore", case_sensitive=False)


class PipelineSettings(_Group):
    threshold: float = Field(0.80, ge=0.0, le=1.0, description="Score at or above which an answer is validated.")
    max_generations: int = Field(3, ge=1, le=20, description="LLM answers per question at most (1 = no regeneration).")
    max_delivery_attempts: int = Field(5, ge=1, le=50, description="Tries of one LLM call before the question fails.")


class RunSettings(_Group):
    run_id: str | None = Field(None, max_length=200, description="Label for a run; stored with results.")


class RetrySettings(_Group):
    retry_quota_delay_s: float = Field(20.0, gt=0, description="Delay after a 429 without Retry-After.")
    retry_after_cap_s: float = Field(300.0, gt=0, description="Longest Retry-After honoured.")
    retry_overload_base_s: float = Field(1.0, gt=0, description="First backoff after a 5xx or timeout.")
    retry_overload_cap_s: float = Field(60.0, gt=0, description="Longest backoff after a 5xx or timeout.")

    @model_validator(mode="after")
    def _cap_above_base(self) -> RetrySettings:
        if self.retry_overload_cap_s < self.retry_overload_base_s:
            msg = "QAFLOW_RETRY_OVERLOAD_CAP_S must be >= QAFLOW_RETRY_OVERLOAD_BASE_S"
            raise ValueError(msg)
        return self


def _plugin(field: str, description: str) -> Any:
    """A field naming a plugin: its default is the first plugin its registry declares, and its help
    lists them all (:func:`field_help`)."""
    return Field(default_factory=lambda: plugins.family(field).default, description=description)


def _known_plugin(field: str, value: str) -> str:
    fam = plugins.family(field)
    if fam.find(value) is None:
        msg = fam.refusal(value) if fam.by_scheme else f"Input should be {fam.choices()}"
        raise ValueError(msg)
    return value


def _check_needs(settings: BaseSettings, field: str) -> None:
    """Raise unless every setting the chosen plugin ``requires`` is set (its registry line says which)."""
    fam = plugins.family(field)
    chosen = getattr(settings, field)
    for needed in fam.get(chosen).requires:
        if getattr(settings, needed) in (None, ""):
            msg = f"{PREFIX}{needed.upper()} is required when {fam.variable}={chosen}"
            raise ValueError(msg)


class LlmSettings(_Group):
    llm_provider: str = _plugin("llm_provider", "LLM provider:")
    llm_model: str = Field("", description="Model name; empty picks the provider's default.")
    llm_base_url: str = Field("", description="Provider URL; empty picks the provider's default.")
    llm_api_key: SecretStr | None = Field(None, description="API key (Gemini, OpenAI). Never logged.")
    llm_timeout_s: float = Field(60.0, gt=0, le=600, description="Read timeout of one call.")
    llm_connect_timeout_s: float = Field(5.0, gt=0, le=120, description="Connect timeout of one call.")
    llm_language: Literal["en", "es"] = Field("en", description="Answer language.")
    llm_prompt_template: str | None = Field(
        None, description="Prompt with {title}, {content}, {language}; empty uses the built-in one."
    )
    llm_temperature: float = Field(0.7, ge=0.0, le=2.0, description="Sampling temperature.")
    llm_max_tokens: int = Field(512, ge=1, le=32_000, description="Longest answer, in tokens.")
    llm_seed: int = Field(0, description="Seed of the offline simulator.")
    llm_concurrency: int = Field(8, ge=1, le=1024, description="LLM calls in flight per worker process.")
    llm_sim_latency_ms: float = Field(0.0, ge=0, description="Simulator latency per call.")
    llm_sim_rate_429: float = Field(0.0, ge=0, le=1, description="Simulator share of 429 replies.")
    llm_sim_rate_503: float = Field(0.0, ge=0, le=1, description="Simulator share of 503 replies.")
    llm_sim_rate_timeout: float = Field(0.0, ge=0, le=1, description="Simulator share of timeouts.")
    llm_sim_rate_malformed: float = Field(0.0, ge=0, le=1, description="Simulator share of malformed replies.")
    llm_sim_retry_after_s: float = Field(1.0, ge=0, description="Retry-After the simulator sends with a 429.")

    @field_validator("llm_provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        return _known_plugin("llm_provider", value)

    @model_validator(mode="after")
    def _provider_needs(self) -> LlmSettings:
        _check_needs(self, "llm_provider")
        if self.llm_connect_timeout_s > self.llm_timeout_s:
            msg = "QAFLOW_LLM_CONNECT_TIMEOUT_S must not exceed QAFLOW_LLM_TIMEOUT_S"
            raise ValueError(msg)
        rates = (self.llm_sim_rate_429, self.llm_sim_rate_503, self.llm_sim_rate_timeout, self.llm_sim_rate_malformed)
        if sum(rates) > 1.0:
            msg = "the QAFLOW_LLM_SIM_RATE_* variables must add up to at most 1"
            raise ValueError(msg)
        return self

    @property
    def model(self) -> str:
        """QAFLOW_LLM_MODEL, else the provider's default model (its registry line)."""
        return self.llm_model or plugins.family("llm_provider").get(self.llm_provider).default_model

    @property
    def base_url(self) -> str:
        """QAFLOW_LLM_BASE_URL, else the provider's default URL (its registry line), without a trailing /."""
        return (self.llm_base_url or plugins.family("llm_provider").get(self.llm_provider).default_url).rstrip("/")


class ScorerSettings(_Group):
    scorer: str = _plugin("scorer", "Scorer:")
    scorer_model: str = Field(
        "",
        description="bert-score model: a local directory or a Hugging Face id; empty uses the packaged all-MiniLM-L6-v2.",
    )
    scorer_num_layers: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Layer whose embeddings bert-score uses; empty uses the model's default (6 for MiniLM).",
    )
    scorer_batch_size: int = Field(64, ge=1, le=4096, description="Pairs per model batch.")
    scorer_device: str = Field("auto", description="auto, cpu or cuda[:N].")
    scorer_max_chars: int = Field(4000, ge=16, le=200_000, description="Longer texts are truncated before scoring.")
    scorer_url: str = Field("", description="Base URL of the scorer service (scorer=remote).")
    scorer_timeout_s: float = Field(120.0, gt=0, description="Timeout of one remote scoring call.")

    @field_validator("scorer")
    @classmethod
    def _known_scorer(cls, value: str) -> str:
        return _known_plugin("scorer", value)

    @model_validator(mode="after")
    def _scorer_needs(self) -> ScorerSettings:
        _check_needs(self, "scorer")
        return self


class BackendSettings(_Group):
    bus_url: str = Field("memory://", description="Message bus:")
    store_url: str = Field("sqlite:///qaflow.db", description="Where results are stored:")
    cache_url: str = Field("memory://", description="Cache of results:")
    cache_ttl_s: int = Field(7 * 24 * 3600, ge=1, description="How long a result stays cached.")
    kafka_partitions: int = Field(3, ge=1, le=1000, description="Partitions of topics qaflow creates.")
    kafka_retention_ms: int = Field(7 * 24 * 3600 * 1000, ge=60_000, description="Retention of topics qaflow creates.")
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = Field("PLAINTEXT", description="PLAINTEXT, or SASL_* with SCRAM users (Strimzi KafkaUser).")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field("SCRAM-SHA-512", description="SASL mechanism when a SASL protocol is used.")
    kafka_username: str = Field("", description="SASL user name.")
    kafka_password: SecretStr | None = Field(None, description="SASL password. Never logged.")
    topic_prefix: str = Field("", pattern=r"^[A-Za-z0-9._-]*$", max_length=100, description="Prefix of every topic name, to share one Kafka between several qaflow installs (or tests).")
    kafka_session_timeout_ms: int = Field(10_000, ge=1_000, le=300_000, description="A consumer silent this long leaves its group and its partitions move (a crashed pod's work resumes after it).")
    kafka_max_poll_interval_ms: int = Field(300_000, ge=10_000, description="Longest gap between two polls before a consumer is considered stuck. Worker loops poll (paused when busy) at least every fifth of it, at most every 30 s.")
    kafka_max_block_ms: int = Field(10_000, ge=100, le=600_000, description="Longest a producer send() waits for metadata or buffer space (broker unreachable) before it fails.")
    kafka_request_timeout_ms: int = Field(15_000, ge=1_000, le=600_000, description="Longest the producer waits for the broker's answer to one request.")
    kafka_delivery_timeout_ms: int = Field(60_000, ge=1_000, le=3_600_000, description="Longest a sent record may take to be acknowledged, retries included; flush() fails after it.")
    kafka_create_topics: bool = Field(
        True, description="Create missing topics at start-up (off when Strimzi owns them)."
    )
    kafka_client: Literal["kafka-python", "confluent-kafka"] = Field(
        "confluent-kafka",
        description="Kafka client library behind kafka:// URLs: confluent-kafka (default; librdkafka, about a fifth "
        "of kafka-python's client CPU) or kafka-python (pure Python); docs/architecture.md, \"Two Kafka clients\".",
    )

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> BackendSettings:
        if self.kafka_security_protocol.startswith("SASL_") and (not self.kafka_username or self.kafka_password is None):
            msg = f"QAFLOW_KAFKA_USERNAME and QAFLOW_KAFKA_PASSWORD are required with {self.kafka_security_protocol}"
            raise ValueError(msg)
        # kafka-python refuses delivery_timeout_ms < linger_ms (5) + request_timeout_ms.
        if self.kafka_delivery_timeout_ms < self.kafka_request_timeout_ms + 5:
            msg = (
                f"QAFLOW_KAFKA_DELIVERY_TIMEOUT_MS ({self.kafka_delivery_timeout_ms}) must exceed "
                f"QAFLOW_KAFKA_REQUEST_TIMEOUT_MS ({self.kafka_request_timeout_ms}) by at least 5 ms"
            )
            raise ValueError(msg)
        return self

    @field_validator("bus_url", "store_url", "cache_url")
    @classmethod
    def _known_scheme(cls, value: str, info: ValidationInfo) -> str:
        """The URL's scheme names a plugin (checked here, so a run stops before it starts)."""
        return _known_plugin(str(info.field_name), value)


class CostSettings(_Group):
    llm_prices: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description='Price table, JSON {"model": [input, output]} in USD per million tokens ("*" = any model); '
        "each call's cost is priced from it (qaflow.core.cost). Empty: costs are unknown (null).",
    )

    @field_validator("llm_prices", mode="before")
    @classmethod
    def _parse_prices(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                msg = f'not JSON ({exc.msg}); expected {{"model": [input, output]}}'
                raise ValueError(msg) from exc
        if isinstance(value, dict):
            for model, price in value.items():
                if not isinstance(price, list | tuple) or len(price) != 2 or any(
                    not isinstance(p, int | float) or isinstance(p, bool) or p < 0 for p in price
                ):
                    msg = f"{model!r}: expected [input, output], two prices >= 0 in USD per million tokens"
                    raise ValueError(msg)
        return value


class EmbeddedSettings(
    PipelineSettings, RunSettings, RetrySettings, LlmSettings, ScorerSettings, BackendSettings, CostSettings
):
    """``qaflow run``: every stage in one process."""

    service: ClassVar[str] = "embedded"


S = TypeVar("S", bound=BaseSettings)

# Variables read by tooling (install scripts, test fixtures, local runners), not by services.
# They are known, so a service started from the same shell does not refuse them as typos.
TOOLING_VARIABLES = {
    "QAFLOW_CACHE_DIR": "Where downloads (Kafka jars, the Flink connector, helm, uv) are cached; default ~/.cache/qaflow.",
    "QAFLOW_REQUIRE_SERVERS": "1: tests fail (not skip) when Kafka, PostgreSQL or Redis cannot start; CI implies it.",
    "QAFLOW_REQUIRE_HELM": "1: chart tests fail (not skip) when helm is missing; CI implies it.",
    "QAFLOW_HELM": "Path of the helm binary for the chart tests; default: the cache, then PATH.",
    "QAFLOW_K8S_SCHEMAS": "Directory of the custom-resource JSON schemas; default ../shared/k8s-schemas.",
}

# Every settings class a service may load; their fields make the set of known variables.
_REGISTRY: list[type[BaseSettings]] = [EmbeddedSettings]


def register(cls: type[S]) -> type[S]:
    """Class decorator for service settings, so their variables count as known."""
    _REGISTRY.append(cls)
    return cls


def variables_of(cls: type[BaseSettings]) -> set[str]:
    """The ``QAFLOW_*`` variables ``cls`` reads, and the tooling ones every process tolerates."""
    return {PREFIX + name.upper() for name in cls.model_fields} | set(TOOLING_VARIABLES)


def services() -> dict[str, type[BaseSettings]]:
    """Service name (the chart's component name) -> the settings class it loads."""
    return {getattr(cls, "service", cls.__name__): cls for cls in _REGISTRY}


def known_variables() -> set[str]:
    """Every variable some service reads (the union over the registered settings classes)."""
    return set().union(*(variables_of(cls) for cls in _REGISTRY))


def for_service(environ: Mapping[str, str], service: str) -> dict[str, str]:
    """``environ`` without the ``QAFLOW_*`` variables that only services other than ``service`` read.

    What a launcher (dev stack, tests) may hand a service it starts with a shared configuration;
    names no service reads stay, so a typo still stops the service. An unknown ``service`` (not a
    qaflow service, e.g. the fake LLM) gets ``environ`` unchanged.
    """
    cls = services().get(service)
    if cls is None:
        return dict(environ)
    own, known = variables_of(cls), known_variables()
    return {k: v for k, v in environ.items()
            if not k.upper().startswith(PREFIX) or k.upper() in own or k.upper() not in known}


def _unknown(environ: Mapping[str, str], cls: type[BaseSettings]) -> list[str]:
    own = variables_of(cls)
    return sorted(k for k in environ if k.upper().startswith(PREFIX) and k.upper() not in own)


def _hint(name: str, own: set[str], hints: Mapping[str, str]) -> str:
    if name.upper() in hints:
        return f"{name} ({hints[name.upper()]})"
    elsewhere = "only other services read it" if name.upper() in known_variables() else ""
    # A variable meant for another service is no typo: hint only at a really close own name.
    candidates = own - set(TOOLING_VARIABLES) if elsewhere else own
    # Compared without the shared QAFLOW_ prefix, which alone made QAFLOW_LIMIT "close" to QAFLOW_HELM.
    by_stem = {c[len(PREFIX) :]: c for c in candidates}
    close = difflib.get_close_matches(name.upper()[len(PREFIX) :], by_stem, n=1, cutoff=0.8 if elsewhere else 0.6)
    said = "; ".join(x for x in (elsewhere, f"did you mean {by_stem[close[0]]}?" if close else "") if x)
    return f"{name} ({said})" if said else name


def load(
    cls: type[S],
    environ: Mapping[str, str] | None = None,
    *,
    hints: Mapping[str, str] | None = None,
    flags: Mapping[str, str] | None = None,
    **overrides: Any,
) -> S:
    """Build ``cls`` from the environment plus explicit overrides, or raise ConfigError.

    A ``QAFLOW_*`` variable ``cls`` does not read is an error, with a did-you-mean hint from its
    own variables: a typo, or a variable meant for another service (which this one would ignore).
    ``hints`` (upper-case variable name -> text) replace that guess for names the caller knows
    better, e.g. a command-line option with no variable (:func:`qaflow.cli.options.env_hints`).
    ``flags`` (field -> option, e.g. ``store_url`` -> ``--store``) name the options the values in
    ``overrides`` came from, so an error names what the user typed, not a variable they never set
    (:func:`qaflow.cli.options.given_flags`).
    """
    env = os.environ if environ is None else environ
    unknown = _unknown(env, cls)
    if unknown:
        own = variables_of(cls)
        raise ConfigError("unknown variable(s): " + ", ".join(_hint(name, own, hints or {}) for name in unknown))
    values = {k[len(PREFIX) :].lower(): v for k, v in env.items() if k.upper().startswith(PREFIX)}
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, values, flags or {})) from exc


def field_help(name: str, info: FieldInfo) -> str:
    """The help text of field ``name``; a plugin field's lists its registry's plugins."""
    text = info.description or ""
    if plugins.is_plugin_field(name):
        text = f"{text} {plugins.family(name).describe()}."
    return text


def _explain(exc: ValidationError, values: Mapping[str, Any], flags: Mapping[str, str]) -> str:
    lines = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        name = flags.get(field) or (PREFIX + field.upper() if field else "configuration")
        got = values.get(field)
        secret = "key" in field or "password" in field or field.endswith("_url")  # a URL may hold a password
        shown = "" if got is None or secret else f" (got {got!r})"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{name}: {msg}{shown}" if field else msg)
    return "; ".join(lines)


class WorkerLoopSettings(_Group):
    commit_interval_ms: int = Field(250, ge=0, le=60_000, description="A worker waits for its outputs to be acknowledged and commits its consumer offsets at most this often (and when idle, on shutdown; acknowledged offsets also on a rebalance); 0 = after every step. A crash or a rebalance re-delivers at most this much work, which the idempotent stages absorb.")


class BatchSettings(_Group):
    max_batch_questions: int = Field(500, ge=1, le=10_000, description="Most questions in one POST /v1/questions:batch (422 above); QAFLOW_MAX_BODY_BYTES binds too.")


# --- One settings class per service. The chart renders exactly these variables. ---


class ServiceSettings(_Group):
    http_port: int = Field(9100, ge=1, le=65535, description="Port of the service's HTTP endpoints (/healthz, /readyz, /metrics).")
    http_host: str = Field("127.0.0.1", min_length=1, description="Address the HTTP port listens on: loopback by default (local runs); the chart sets 0.0.0.0 in pods.")
    log_format: Literal["json", "text"] = Field("json", description="json (one object per line, for containers) or text.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log verbosity.")
    consumer_group: str = Field("", description="Kafka consumer group; empty uses the service's default.")
    shutdown_grace_s: float = Field(20.0, gt=0, le=600, description="On SIGTERM, time allowed to finish in-flight work.")


@register
class ApiSettings(RunSettings, BackendSettings, ServiceSettings, BatchSettings):
    """api: submit questions, read results and statistics."""

    service: ClassVar[str] = "api"

    http_port: int = Field(8000, ge=1, le=65535, description="Port the api listens on.")
    api_key: SecretStr | None = Field(None, description="When set, POST requests need the header X-API-Key with this value.")
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024, description="Largest request body accepted (413 above).")
    enqueue_timeout_s: float = Field(3.0, ge=0.1, le=30, description="Longest a submission waits for Kafka's acknowledgement while a broker is reachable; past it 503 with Retry-After (with no broker reachable: 503 at once).")

    @field_validator("api_key")
    @classmethod
    def _key_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty key would let every request in: refuse it rather than silently turn authentication off.
        if value is not None and not value.get_secret_value().strip():
            msg = "is set but empty; unset it to turn authentication off, or give a key"
            raise ValueError(msg)
        return value


@register
class LlmWorkerSettings(PipelineSettings, RetrySettings, LlmSettings, BackendSettings, ServiceSettings, WorkerLoopSettings, CostSettings):
    """llm-worker: answer questions with bounded concurrency and adaptive rate limiting."""

    service: ClassVar[str] = "llm-worker"

    rpm_limit: int = Field(0, ge=0, description="Requests per minute for all replicas together (shared through Redis); 0 = no limit.")
    aimd_min_concurrency: int = Field(1, ge=1, description="Concurrency never drops below this on 429s.")
    aimd_recover_after_s: float = Field(5.0, gt=0, description="Time without a decrease before concurrency grows by one.")
    aimd_floor_share: float = Field(0.25, ge=0, le=1, description="Concurrency never drops below this share of QAFLOW_LLM_CONCURRENCY on 429s.")
    aimd_window_s: float = Field(10.0, gt=0, le=600, description="Sliding window over which the share of calls answered 429 is measured.")
    aimd_window_calls: int = Field(20, ge=1, le=10_000, description="Most recent calls the window holds at most.")
    aimd_min_calls: int = Field(8, ge=1, le=10_000, description="Calls the window must hold before its share of 429s is judged (at most QAFLOW_AIMD_WINDOW_CALLS).")
    aimd_quota_share: float = Field(0.5, gt=0, le=1, description="Share of 429s in the window taken as a quota: halve concurrency, pause for Retry-After.")

    @model_validator(mode="after")
    def _aimd_window(self) -> LlmWorkerSettings:
        if self.aimd_min_calls > self.aimd_window_calls:
            msg = "QAFLOW_AIMD_MIN_CALLS must not exceed QAFLOW_AIMD_WINDOW_CALLS"
            raise ValueError(msg)
        return self


@register
class RetryWorkerSettings(PipelineSettings, RetrySettings, BackendSettings, ServiceSettings, WorkerLoopSettings):
    """retry-worker: re-publish failed calls when their delay has passed."""

    service: ClassVar[str] = "retry-worker"

    retry_max_waiting: int = Field(10_000, ge=1, description="Records held in memory before the worker pauses its partitions.")


@register
class StorageWriterSettings(BackendSettings, ServiceSettings, WorkerLoopSettings):
    """storage-writer: persist results, history and dead letters; fill the cache."""

    service: ClassVar[str] = "storage-writer"

    storage_batch_size: int = Field(500, ge=1, le=10_000, description="Records written per transaction at most.")


@register
class ScoreWorkerSettings(PipelineSettings, ScorerSettings, BackendSettings, ServiceSettings, WorkerLoopSettings):
    """score-worker: the in-process score stage as a process (the PyFlink job replaces it in the cluster)."""

    service: ClassVar[str] = "score-worker"

    @model_validator(mode="after")
    def _scoring_fits_poll_interval(self) -> ScoreWorkerSettings:
        # A batch is scored on the polling thread: a remote call that may last the whole
        # timeout must end before Kafka gives the member up.
        remote = plugins.family("scorer").get(self.scorer).remote
        if remote and self.scorer_timeout_s * 1000 >= self.kafka_max_poll_interval_ms:
            msg = (
                f"QAFLOW_SCORER_TIMEOUT_S ({self.scorer_timeout_s:g} s) must be shorter than "
                f"QAFLOW_KAFKA_MAX_POLL_INTERVAL_MS ({self.kafka_max_poll_interval_ms} ms): a batch is scored "
                "between two polls"
            )
            raise ValueError(msg)
        return self


@register
class ScorerServiceSettings(ScorerSettings, ServiceSettings):
    """scorer: BERTScore as a service, so the model can run on its own (GPU) nodes."""

    service: ClassVar[str] = "scorer"

    http_port: int = Field(8001, ge=1, le=65535, description="Port the scorer listens on.")
    scorer_max_batch: int = Field(256, ge=1, le=10_000, description="Most pairs accepted in one request (413 above).")


@register
class TrafficGenSettings(RunSettings, ServiceSettings):
    """traffic-gen: submit a data set through the api at a rate."""

    service: ClassVar[str] = "traffic-gen"

    traffic_api_url: str = Field("http://localhost:8000", description="Base URL of the api.")
    traffic_api_key: SecretStr | None = Field(None, description="Sent as X-API-Key when the api requires a key.")
    traffic_dataset: str = Field("data/sample.csv", description="Data set to send.")
    traffic_rate: float = Field(5.0, gt=0, description="Mean requests per second.")
    traffic_distribution: Literal["poisson", "bursty", "uniform"] = Field("poisson", description="Arrival process.")
    traffic_duration_s: float = Field(0.0, ge=0, description="Stop after this long (0 = until the count is reached).")
    traffic_total: int = Field(0, ge=0, description="Stop after this many requests (0 = the whole data set once).")
    traffic_repeat_share: float = Field(0.0, ge=0, le=1, description="Share of requests that repeat an earlier question.")
    traffic_seed: int = Field(0, description="Seed of the arrival and repeat draws.")
    traffic_wait_s: float = Field(0.0, ge=0, description="After sending, poll until every question is terminal, for at most this long.")
    traffic_idle: bool = Field(False, description="After the run, keep serving /healthz and /metrics until stopped instead of exiting (a Deployment restarts an exited container into CrashLoopBackOff).")


@register
class DashboardSettings(BackendSettings, ServiceSettings):
    """dashboard: a live page of throughput, latency, scores, attempts and the loop."""

    service: ClassVar[str] = "dashboard"

    http_port: int = Field(8002, ge=1, le=65535, description="Port the dashboard listens on.")
    dashboard_refresh_s: float = Field(5.0, gt=0, description="How often the page refreshes its figures.")
    dashboard_api_url: str = Field("", description="Base URL of the api; its /v1/stats gives the cache hit rate shown. Empty: not shown.")


DAY_S = 24 * 3600
StartingOffsets = Literal["committed-or-earliest", "committed-or-latest", "earliest", "latest"]
DeliveryGuarantee = Literal["at-least-once", "exactly-once"]


@register
class ScoreJobSettings(PipelineSettings, ScorerSettings, BackendSettings):
    """score-job: the PyFlink job that scores answers and routes them (its own options)."""

    service: ClassVar[str] = "score-job"

    flink_group_id: str = Field(SCORE_JOB.group, min_length=1, description="Kafka consumer group of the source.")
    flink_starting_offsets: StartingOffsets = Field(
        "committed-or-earliest", description="Where a job without state starts reading qa.answers."
    )
    flink_checkpoint_interval_s: float | None = Field(
        None, ge=0, description="Checkpoint every N seconds; empty = the cluster's interval, else 10; 0 = none."
    )
    flink_checkpoint_dir: str = Field("", description="Checkpoint storage URI; empty = the cluster's configuration.")
    flink_checkpoint_retention: Literal["retain", "delete"] = Field(
        "retain", description="Keep the last checkpoint when the job is cancelled (retain) or not."
    )
    flink_parallelism: int = Field(0, ge=0, le=1024, description="Job parallelism; 0 = the cluster's default.")
    flink_batch_size: int = Field(
        0, ge=0, le=100_000, description="Pairs per scoring call; 0 = QAFLOW_SCORER_BATCH_SIZE."
    )
    flink_batch_wait_ms: int = Field(
        1000, ge=1, le=600_000, description="Longest wait before a partial batch is scored (Python bundle time)."
    )
    flink_delivery_guarantee: DeliveryGuarantee = Field("at-least-once", description="Kafka sink guarantee.")
    flink_transactional_id_prefix: str = Field(
        SCORE_JOB.group, min_length=1, description="Kafka transactional id prefix (exactly-once only)."
    )
    flink_open_state_ttl_s: int = Field(
        DAY_S, ge=0, description="Seconds the state of a question still regenerating lives untouched (0 = forever)."
    )
    flink_terminal_state_ttl_s: int = Field(
        7 * DAY_S, ge=0, description="Seconds a finished question's marker drops re-deliveries (0 = forever)."
    )
    flink_job_name: str = Field("qaflow-score", min_length=1, description="Flink job name.")

    @model_validator(mode="after")
    def _exactly_once_needs_checkpoints(self) -> ScoreJobSettings:
        if self.flink_delivery_guarantee == "exactly-once" and self.flink_checkpoint_interval_s == 0:
            msg = "QAFLOW_FLINK_DELIVERY_GUARANTEE=exactly-once needs QAFLOW_FLINK_CHECKPOINT_INTERVAL_S > 0"
            raise ValueError(msg)
        return self
