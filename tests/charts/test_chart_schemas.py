"""Every rendered object validates strictly: core kinds with kubernetes-validate (the
Kubernetes OpenAPI schemas, unknown fields rejected), custom resources against the CRD
schemas in ../shared/k8s-schemas (additionalProperties false throughout)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.charts.conftest import ALL_SETS, Renders

pytestmark = pytest.mark.charts

# The oldest Kubernetes the chart supports (Strimzi 1.2 needs 1.30) and the kind node's.
KUBE_VERSIONS = ("1.30.0", "1.34.0")
CUSTOM_GROUPS = {"kafka.strimzi.io", "flink.apache.org", "keda.sh", "postgresql.cnpg.io", "monitoring.coreos.com"}


def group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


@cache
def _crd_validator(path: Path) -> jsonschema.protocols.Validator:
    schema = json.loads(path.read_text())
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    cls.check_schema(schema)
    return cls(schema)


def crd_errors(obj: dict[str, Any], schemas: Path) -> list[str]:
    group, version = group_version(obj["apiVersion"])
    path = schemas / group / f"{obj['kind'].lower()}_{version}.json"
    if not path.is_file():
        return [f"no schema for {obj['apiVersion']} {obj['kind']} ({path})"]
    validator = _crd_validator(path)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    ]


def core_errors(obj: dict[str, Any], kube_version: str) -> list[str]:
    try:
        kubernetes_validate.validate(obj, kube_version, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError as e:
        return [e.message]
    return []


@pytest.mark.parametrize("value_set", ALL_SETS)
def test_every_object_validates(renders: Renders, schemas_dir: Path, value_set: str) -> None:
    failures: list[str] = []
    for obj in renders[value_set]:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        group, _ = group_version(obj["apiVersion"])
        if group in CUSTOM_GROUPS:
            errors = crd_errors(obj, schemas_dir)
        else:
            errors = [f"[k8s {v}] {e}" for v in KUBE_VERSIONS for e in core_errors(obj, v)]
        failures += [f"{where}: {e}" for e in errors]
    assert not failures, "\n".join(failures)


def test_the_crd_validation_is_strict(schemas_dir: Path) -> None:
    """A misspelt field in a custom resource is an error, not ignored (guards the test above)."""
    topic = {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {"name": "t"},
        "spec": {"partitions": 3, "replicas": 1, "partitons": 3},
    }
    assert any("partitons" in e for e in crd_errors(topic, schemas_dir))
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "imagePullPolicyy": "x"}]}}},
    }
    assert core_errors(deployment, KUBE_VERSIONS[0])


@pytest.mark.parametrize("value_set", ALL_SETS)
def test_rendered_kinds_are_the_expected_ones(renders: Renders, value_set: str) -> None:
    kinds = {(o["apiVersion"], o["kind"]) for o in renders[value_set]}
    assert ("kafka.strimzi.io/v1", "Kafka") in kinds
    assert ("kafka.strimzi.io/v1", "KafkaNodePool") in kinds
    assert ("flink.apache.org/v1beta1", "FlinkDeployment") in kinds
    topics = [o for o in renders[value_set] if o["kind"] == "KafkaTopic"]
    from qaflow.core import topics as core_topics

    assert sorted(t["spec"]["topicName"] for t in topics) == sorted(core_topics.ALL)
