"""The chart's wiring equals the topology (src/qaflow/core/topology.py), the one declaration.

The chart is rendered with helm and read back: for every service it deploys, the backend
URLs it is given (``global.contract.services.*.backends``), its consumer group, and its
KafkaUser's ACLs (``kafka.users.acls``: topics read, written, only described, and
transactional ids) must be what the topology says. Change one topic, group or backend in
the topology, or in the chart, and :func:`drift` names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from qaflow.core import topics, topology
from qaflow.core.topology import Stage
from tests.charts.conftest import Renders
from tests.charts.render import component, workloads

pytestmark = pytest.mark.charts

URL_VARIABLES = {"bus": "QAFLOW_BUS_URL", "store": "QAFLOW_STORE_URL", "cache": "QAFLOW_CACHE_URL"}
GROUP_VARIABLES = ("QAFLOW_CONSUMER_GROUP", "QAFLOW_FLINK_GROUP_ID")
# What the production value set (Kafka users on) must deploy; traffic-gen and the
# score-worker (local only) are not in it.
DEPLOYED = {"api", "llm-worker", "retry-worker", "storage-writer", "dashboard", "scorer", "score-job"}


def acl_view(user: Mapping[str, Any]) -> dict[str, Any]:
    """A KafkaUser's ACLs as ``{read, write, describe: sorted topic names, transactional: bool}``."""
    read, write, describe, transactional = set(), set(), set(), False
    for acl in user["spec"]["authorization"]["acls"]:
        resource, ops = acl["resource"], set(acl["operations"])
        if resource["type"] == "transactionalId":
            transactional = True
        if resource["type"] != "topic":
            continue
        if "Read" in ops:
            read.add(resource["name"])
        if "Write" in ops:
            write.add(resource["name"])
        if ops == {"Describe"}:
            describe.add(resource["name"])
    return {"read": sorted(read), "write": sorted(write), "describe": sorted(describe), "transactional": transactional}


def chart_view(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per rendered qaflow service: backends, consumer group and (when it has a KafkaUser) ACLs."""
    users = {d["metadata"]["name"]: d for d in docs if d["kind"] == "KafkaUser"}
    out: dict[str, dict[str, Any]] = {}
    for w in workloads(docs):
        service = component(w)
        if service not in topology.BY_SERVICE:
            continue
        view: dict[str, Any] = {
            "backends": [b for b, var in URL_VARIABLES.items() if var in w.env],
            "group": next((str(w.env[v]) for v in GROUP_VARIABLES if w.env.get(v)), ""),
        }
        user = w.env.get("QAFLOW_KAFKA_USERNAME")
        if user:
            view["acls"] = acl_view(users[user]) if user in users else f"no KafkaUser {user}"
        out[service] = view
    return out


def topology_view(stage: Stage, with_acls: bool) -> dict[str, Any]:
    view: dict[str, Any] = {"backends": list(stage.url_backends), "group": stage.group}
    if with_acls and "bus" in stage.backends:
        view["acls"] = {
            "read": sorted(stage.inputs),
            "write": sorted(stage.outputs),
            "describe": sorted(stage.describes),
            "transactional": stage.transactional,
        }
    return view


def drift(docs: list[dict[str, Any]], stages: Iterable[Stage], *, with_acls: bool = True) -> list[str]:
    """Every difference between the rendered chart and ``stages``, one line each."""
    declared = {s.service: s for s in stages}
    problems = []
    for service, rendered in sorted(chart_view(docs).items()):
        expected = topology_view(declared[service], with_acls)
        for key in sorted(expected.keys() | rendered.keys()):
            if expected.get(key) != rendered.get(key):
                problems.append(f"{service} {key}: chart {rendered.get(key)!r}, topology {expected.get(key)!r}")
    return problems


@pytest.mark.parametrize("value_set", ["default", "production"])
def test_chart_backends_groups_and_acls_match_the_topology(renders: Renders, value_set: str) -> None:
    docs = renders[value_set]
    assert drift(docs, topology.STAGES, with_acls=value_set == "production") == []


def test_every_deployed_service_is_compared(renders: Renders) -> None:
    rendered = chart_view(renders["production"])
    assert set(rendered) >= DEPLOYED, sorted(rendered)
    with_users = {s for s, v in rendered.items() if "acls" in v}
    assert with_users == {s.service for s in topology.STAGES if "bus" in s.backends} & set(rendered)


def test_a_changed_topic_group_or_backend_is_drift(renders: Renders) -> None:
    """The comparison can fail: one topic, one group, one backend changed in the topology each show."""
    docs = renders["production"]
    changed = {
        "topic": dataclasses.replace(topology.STORAGE, inputs=(topics.RESULTS, topics.DEAD_LETTER)),
        "group": dataclasses.replace(topology.ANSWER, group="qaflow-answer"),
        "backend": dataclasses.replace(topology.DASHBOARD, backends=("store", "cache")),
        "output": dataclasses.replace(topology.SCORE_JOB, outputs=(*topology.SCORE_JOB.outputs, topics.RETRY_QUOTA)),
    }
    for what, stage in changed.items():
        stages = [stage if s.service == stage.service else s for s in topology.STAGES]
        found = drift(docs, stages)
        assert found and all(line.startswith(stage.service) for line in found), (what, found)


def test_kafka_topics_are_the_topology_topics(renders: Renders) -> None:
    rendered = {d["spec"]["topicName"] for d in renders["production"] if d["kind"] == "KafkaTopic"}
    used = {t for s in topology.STAGES for t in (*s.inputs, *s.outputs, *s.describes)}
    assert rendered == set(topics.ALL) == used
