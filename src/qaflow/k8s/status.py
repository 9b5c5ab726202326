"""What a person checks first on a cluster: pods by component, the Flink job, the Kafka
topics, and how many llm-workers run. Read-only; uses the official ``kubernetes`` client."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, cast

from qaflow.core.errors import MissingExtraError, QaflowError

PART_OF = "app.kubernetes.io/part-of=qaflow"
COMPONENT = "app.kubernetes.io/component"


class ClusterUnavailableError(QaflowError):
    """No kubeconfig, or the API server cannot be reached; the message says what to do."""


ADVICE = (
    "Create a local cluster with `kind create cluster --config k8s-dev/kind-cluster.yaml` "
    "(or `minikube start`), install the operators with `bash k8s-dev/bootstrap.sh`, then `skaffold dev`. "
    "See docs/kubernetes.md."
)


@dataclass
class ClusterStatus:
    context: str
    namespace: str
    pods: dict[str, dict[str, int]] = field(default_factory=dict)  # component -> readiness -> pods
    flink: list[dict[str, str]] = field(default_factory=list)
    topics: list[dict[str, str]] = field(default_factory=list)
    llm_workers: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def connect(context: str | None = None) -> tuple[Any, str]:
    """An ApiClient from the kubeconfig (or in-cluster config), and the context's name."""
    try:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingExtraError("kubernetes", "k8s") from exc
    try:
        config.load_kube_config(context=context)
        _, active = config.list_kube_config_contexts()
        name = context or (active or {}).get("name", "?")
    except (ConfigException, FileNotFoundError, TypeError) as exc:
        try:
            config.load_incluster_config()
            name = "in-cluster"
        except ConfigException:
            msg = f"no Kubernetes configuration found ({exc}). {ADVICE}"
            raise ClusterUnavailableError(msg) from exc
    return client.ApiClient(), name


def _ready(pod: Any) -> str:
    phase = pod.status.phase or "Unknown"
    statuses = pod.status.container_statuses or []
    if phase == "Running" and statuses and all(s.ready for s in statuses):
        return "ready"
    waiting = [s.state.waiting.reason for s in statuses if s.state and s.state.waiting and s.state.waiting.reason]
    return waiting[0] if waiting else phase.lower()


def _conditions(obj: dict[str, Any]) -> dict[str, str]:
    return {c.get("type", ""): c.get("status", "") for c in obj.get("status", {}).get("conditions", []) or []}


def gather(api: Any, context: str, namespace: str, release: str | None = None) -> ClusterStatus:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    selector = PART_OF + (f",app.kubernetes.io/instance={release}" if release else "")
    core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
    status = ClusterStatus(context, namespace)
    try:
        pods: dict[str, Counter[str]] = defaultdict(Counter)
        # The client's models type every field Optional; a pod or deployment from the API has them.
        pod_items: list[Any] = core.list_namespaced_pod(namespace, label_selector=selector).items
        for pod in pod_items:
            pods[(pod.metadata.labels or {}).get(COMPONENT, "?")][_ready(pod)] += 1
        status.pods = {comp: dict(counts) for comp, counts in sorted(pods.items())}
        deployments: list[Any] = apps.list_namespaced_deployment(
            namespace, label_selector=f"{selector},{COMPONENT}=llm-worker").items
        for d in deployments:
            status.llm_workers[d.metadata.name] = int(d.status.ready_replicas or 0)
            status.llm_workers[d.metadata.name + " (desired)"] = int(d.spec.replicas or 0)
    except (ApiException, HTTPError, OSError) as exc:
        msg = f"cannot reach the Kubernetes API of context {context!r}: {exc}. {ADVICE}"
        raise ClusterUnavailableError(msg) from exc
    for group, version, plural, sink in (
        ("flink.apache.org", "v1beta1", "flinkdeployments", status.flink),
        ("kafka.strimzi.io", "v1", "kafkatopics", status.topics),
    ):
        try:
            found = custom.list_namespaced_custom_object(group, version, namespace, plural, label_selector=None)
            items = cast("dict[str, Any]", found)  # the parsed JSON list object
        except ApiException as exc:
            if exc.status == 404:
                status.notes.append(f"{plural}.{group} is not installed (run k8s-dev/bootstrap.sh)")
                continue
            raise
        for obj in items.get("items", []):
            meta, st = obj.get("metadata", {}), obj.get("status", {})
            if plural == "flinkdeployments":
                job = st.get("jobStatus", {}) or {}
                sink.append(
                    {
                        "name": meta.get("name", ""),
                        "job": job.get("state", "?"),
                        "lifecycle": st.get("lifecycleState", "?"),
                    }
                )
            else:
                sink.append(
                    {
                        "name": meta.get("name", ""),
                        "topic": obj.get("spec", {}).get("topicName") or meta.get("name", ""),
                        "ready": _conditions(obj).get("Ready", "Unknown"),
                    }
                )
    if not status.pods:
        status.notes.append(f"no qaflow pods in namespace {namespace!r}; is the release installed there?")
    return status
