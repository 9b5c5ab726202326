"""The chart renders only QAFLOW_* variables the code knows, with values the code accepts.

A service refuses to start on an unknown QAFLOW_* name (qaflow.core.settings.load), so a
typo in the chart is a crash loop in the cluster. This is checked here, without a cluster:
every name against known_variables(), and every workload's whole environment through the
settings class the service itself loads.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from tests.charts.conftest import ALL_SETS, Renders
from tests.charts.render import Workload, component, workloads

pytestmark = pytest.mark.charts

# Names the chart may render before the services register them in qaflow.core.settings.
# Empty now: every name the chart uses is registered. Add a name here only while its
# settings class is being written, and remove it when it lands.
PENDING_REGISTRATION: frozenset[str] = frozenset()

# The settings class each service loads at start-up (module, class).
SETTINGS_OF = {
    "api": ("qaflow.core.settings", "ApiSettings"),
    "llm-worker": ("qaflow.core.settings", "LlmWorkerSettings"),
    "retry-worker": ("qaflow.core.settings", "RetryWorkerSettings"),
    "storage-writer": ("qaflow.core.settings", "StorageWriterSettings"),
    "scorer": ("qaflow.core.settings", "ScorerServiceSettings"),
    "traffic-gen": ("qaflow.core.settings", "TrafficGenSettings"),
    "dashboard": ("qaflow.core.settings", "DashboardSettings"),
    "score-job": ("qaflow.flinkjob.args", "ScoreJobSettings"),
}
PLACEHOLDER_SECRET = "s3cret-from-a-secret"
# A URL held in a Secret the chart does not render (production's existingSecret) stands in as a
# URL of the right scheme: the settings check a URL's scheme when they load.
PLACEHOLDER_URL = f"postgresql://qaflow:{PLACEHOLDER_SECRET}@postgres/qaflow"


def settings_class(service: str) -> Any:
    module, name = SETTINGS_OF[service]
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"{service}: settings class {module}.{name} not found ({exc})", pytrace=False)


def known() -> set[str]:
    from qaflow.core.settings import known_variables

    for module, _ in SETTINGS_OF.values():
        importlib.import_module(module)  # registers the service classes
    return known_variables()


def qaflow_workloads(docs: list[dict[str, Any]]) -> list[Workload]:
    return [w for w in workloads(docs) if component(w) in SETTINGS_OF]


@pytest.mark.parametrize("value_set", ALL_SETS)
def test_only_known_variables_are_rendered(renders: Renders, value_set: str) -> None:
    names = known() | PENDING_REGISTRATION
    unknown = sorted(
        f"{w.kind}/{w.name}: {n}"
        for w in workloads(renders[value_set], include_tests=True)
        for n in w.env
        if n.upper().startswith("QAFLOW_") and n.upper() not in names
    )
    assert not unknown, "QAFLOW_* names the services would refuse (not in known_variables()):\n" + "\n".join(unknown)


def test_pending_names_are_still_pending() -> None:
    """The allow-list shrinks: a name the code now registers must leave it."""
    registered = sorted(PENDING_REGISTRATION & known())
    assert not registered, f"now registered, drop them from PENDING_REGISTRATION: {registered}"


@pytest.mark.parametrize("value_set", ALL_SETS)
def test_each_service_accepts_its_environment(renders: Renders, value_set: str) -> None:
    """Load every workload's env (secrets filled in) with the settings class the service loads."""
    from qaflow.core.errors import ConfigError
    from qaflow.core.settings import load

    found = set()
    problems = []
    for w in workloads(renders[value_set], missing_secret=PLACEHOLDER_SECRET):
        service = component(w)
        if service not in SETTINGS_OF:
            continue
        found.add(service)
        env = {k: v or "" for k, v in w.env.items() if k.startswith("QAFLOW_")}
        env = {k: PLACEHOLDER_URL if v == PLACEHOLDER_SECRET and k == "QAFLOW_STORE_URL" else v
               for k, v in env.items()}
        unexpanded = [k for k, v in env.items() if "$(" in v]
        if unexpanded:
            problems.append(f"{w.name}: $(VAR) left unexpanded in {unexpanded}")
        try:
            load(settings_class(service), environ=env)
        except ConfigError as exc:
            problems.append(f"{w.name} ({service}): {exc}")
    assert not problems, "\n".join(problems)
    assert found, "no qaflow workloads rendered"


@pytest.mark.parametrize("value_set", ALL_SETS)
def test_port_env_probes_and_container_port_agree(renders: Renders, value_set: str) -> None:
    for w in qaflow_workloads(renders[value_set]):
        if w.kind == "FlinkDeployment":
            continue
        port = w.ports["http"]
        assert w.env.get("QAFLOW_HTTP_PORT") == str(port), f"{w.name}: QAFLOW_HTTP_PORT != containerPort {port}"
        assert w.env.get("QAFLOW_HTTP_HOST") == "0.0.0.0", f"{w.name}: binds loopback only, probes would fail"
        assert w.probes["liveness"].port == port and w.probes["readiness"].port == port, w.name
        assert w.probes["liveness"].path == "/healthz" and w.probes["readiness"].path == "/readyz", w.name


@pytest.mark.parametrize("value_set", ALL_SETS)
def test_backends_are_wired(renders: Renders, value_set: str) -> None:
    docs = renders[value_set]
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    kafkas = {d["metadata"]["name"] for d in docs if d["kind"] == "Kafka"}
    for w in qaflow_workloads(docs):
        bus = w.env.get("QAFLOW_BUS_URL")
        if bus:
            host = bus.removeprefix("kafka://").split(":")[0]
            assert host.removesuffix("-kafka-bootstrap") in kafkas or "." in host, f"{w.name}: {bus}"
            assert w.env.get("QAFLOW_KAFKA_CREATE_TOPICS") == "false", f"{w.name}: Strimzi owns the topics"
        store = w.env.get("QAFLOW_STORE_URL")
        if store and w.unresolved == []:
            assert store.startswith("postgresql://") and "$(" not in store, f"{w.name}: {store}"
        cache = w.env.get("QAFLOW_CACHE_URL")
        if cache:
            host = cache.split("://", 1)[1].rsplit("@", 1)[-1].split(":")[0]
            assert host in services or "." in host, f"{w.name}: cache host {host} is no Service"
    api_url = (
        next(w.env["QAFLOW_TRAFFIC_API_URL"] for w in qaflow_workloads(docs) if component(w) == "traffic-gen")
        if any(component(w) == "traffic-gen" for w in qaflow_workloads(docs))
        else None
    )
    if api_url:
        assert api_url.split("//")[1].split(":")[0] in services


def test_store_url_interpolates_the_rendered_password(renders: Renders) -> None:
    docs = renders["default"]
    secret = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "qaflow-postgres")
    import base64

    password = base64.b64decode(secret["data"]["password"]).decode()
    api = next(w for w in workloads(docs) if component(w) == "api")
    assert api.env["QAFLOW_STORE_URL"] == f"postgresql://qaflow:{password}@qaflow-postgres:5432/qaflow"
    assert api.env["PROMETHEUS_MULTIPROC_DIR"]


def test_scram_credentials_come_from_each_services_kafka_user(renders: Renders) -> None:
    docs = renders["production"]
    users = {d["metadata"]["name"]: d for d in docs if d["kind"] == "KafkaUser"}
    for d in docs:
        if d["kind"] not in {"Deployment", "FlinkDeployment"}:
            continue
        from tests.charts.render import pod_spec

        env = pod_spec(d)["containers"][0].get("env", [])  # type: ignore[index]
        by_name = {e["name"]: e for e in env}
        if "QAFLOW_BUS_URL" not in by_name:
            continue
        user = by_name["QAFLOW_KAFKA_USERNAME"]["value"]
        assert user in users, f"{d['metadata']['name']}: no KafkaUser {user}"
        ref = by_name["QAFLOW_KAFKA_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": user, "key": "password"}, d["metadata"]["name"]
        assert by_name["QAFLOW_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_PLAINTEXT"
        assert users[user]["spec"]["authentication"]["type"] == "scram-sha-512"


def test_acls_cover_the_consumer_groups(renders: Renders) -> None:
    docs = renders["production"]
    users = {d["metadata"]["name"]: d for d in docs if d["kind"] == "KafkaUser"}
    for w in qaflow_workloads(docs):
        group = w.env.get("QAFLOW_CONSUMER_GROUP") or w.env.get("QAFLOW_FLINK_GROUP_ID")
        if not group:
            continue
        acls = users[w.env["QAFLOW_KAFKA_USERNAME"] or ""]["spec"]["authorization"]["acls"]
        assert any(
            a["resource"]["type"] == "group"
            and "Read" in a["operations"]
            and (
                group.startswith(a["resource"]["name"])
                if a["resource"].get("patternType") == "prefix"
                else group == a["resource"]["name"]
            )
            for a in acls
        ), f"{w.name}: no ACL lets it read with group {group}"


def test_keda_watches_the_llm_workers_group(renders: Renders) -> None:
    docs = renders["kind"]
    scaled = next(d for d in docs if d["kind"] == "ScaledObject")
    worker = next(w for w in workloads(docs) if component(w) == "llm-worker")
    trigger = scaled["spec"]["triggers"][0]["metadata"]
    assert trigger["consumerGroup"] == worker.env["QAFLOW_CONSUMER_GROUP"]
    assert trigger["topic"] == "qa.questions"
    assert trigger["bootstrapServers"] == worker.env["QAFLOW_BUS_URL"].removeprefix("kafka://")
    assert not [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"], "KEDA makes the HPA itself"


def test_the_env_checks_can_fail(helm_bin: Any) -> None:
    """A misspelt name and a bad value are both caught (guards the tests above)."""
    from qaflow.core.errors import ConfigError
    from qaflow.core.settings import load
    from tests.charts.render import render

    docs = render(
        set_values={"global.config.QAFLOW_TRESHOLD": "0.5", "api.env.QAFLOW_LOG_LEVEL": "LOUD"}, helm_bin=helm_bin
    )
    api = next(w for w in workloads(docs) if component(w) == "api")
    assert "QAFLOW_TRESHOLD" in api.env and "QAFLOW_TRESHOLD" not in known()
    env = {k: v or "" for k, v in api.env.items() if k.startswith("QAFLOW_")}
    with pytest.raises(ConfigError, match="QAFLOW_TRESHOLD"):
        load(settings_class("api"), environ=env)
    del env["QAFLOW_TRESHOLD"]
    with pytest.raises(ConfigError, match="QAFLOW_LOG_LEVEL"):
        load(settings_class("api"), environ=env)
