"""`qaflow cluster status` drives the real kubernetes client against a local fake API server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, abort, jsonify, request
from werkzeug.serving import make_server

NS = "qa"
SEEN_SELECTORS: list[str] = []


def pod(component: str, ready: bool, waiting: str | None = None) -> dict:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "metadata": {"name": f"{component}-x", "labels": {"app.kubernetes.io/component": component}},
        "status": {"phase": "Running" if ready or not waiting else "Pending",
                   "containerStatuses": [{"name": "c", "ready": ready, "image": "i", "imageID": "",
                                          "restartCount": 0, "state": state}]},
    }


def fake_api(with_strimzi: bool) -> Flask:
    app = Flask("fake-kube")

    @app.get(f"/api/v1/namespaces/{NS}/pods")
    def pods():  # type: ignore[no-untyped-def]
        SEEN_SELECTORS.append(request.args.get("labelSelector", ""))
        return jsonify({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [
            pod("api", True), pod("api", True), pod("llm-worker", True), pod("llm-worker", False, "CrashLoopBackOff"),
        ]})

    @app.get(f"/apis/apps/v1/namespaces/{NS}/deployments")
    def deployments():  # type: ignore[no-untyped-def]
        return jsonify({"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {}, "items": [
            {"metadata": {"name": "qa-llm-worker"}, "spec": {"replicas": 3, "selector": {}, "template": {}},
             "status": {"readyReplicas": 2}},
        ]})

    @app.get(f"/apis/flink.apache.org/v1beta1/namespaces/{NS}/flinkdeployments")
    def flink():  # type: ignore[no-untyped-def]
        return jsonify({"items": [{"metadata": {"name": "qa-score-job"},
                                   "status": {"jobStatus": {"state": "RUNNING"}, "lifecycleState": "STABLE"}}]})

    @app.get(f"/apis/kafka.strimzi.io/v1/namespaces/{NS}/kafkatopics")
    def topics():  # type: ignore[no-untyped-def]
        if not with_strimzi:
            abort(404)
        return jsonify({"items": [
            {"metadata": {"name": "qa-qa-questions"}, "spec": {"topicName": "qa.questions"},
             "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
            {"metadata": {"name": "qa-qa-answers"}, "spec": {"topicName": "qa.answers"},
             "status": {"conditions": [{"type": "Ready", "status": "False"}]}},
        ]})

    return app


@pytest.fixture(params=[True, False], ids=["strimzi", "no-strimzi"])
def kubeconfig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    server = make_server("127.0.0.1", 0, fake_api(request.param), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cfg = tmp_path / "kubeconfig"
    cfg.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "u", "namespace": NS}}],
    }))
    yield cfg
    server.shutdown()


def qaflow(*args: str, kubeconfig: Path | str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QAFLOW_")}
    return subprocess.run([sys.executable, "-m", "qaflow.cli.main", "cluster", "status", *args],
                          capture_output=True, text=True, timeout=60, env={**env, "KUBECONFIG": str(kubeconfig)},
                          check=False)


def test_status_reports_pods_flink_topics_and_workers(kubeconfig: Path) -> None:
    proc = qaflow("-n", NS, "--release", "qa", "--json", kubeconfig=kubeconfig)
    assert proc.returncode == 0, proc.stderr
    st = json.loads(proc.stdout)
    assert st["context"] == "fake"
    assert st["pods"] == {"api": {"ready": 2}, "llm-worker": {"ready": 1, "CrashLoopBackOff": 1}}
    assert st["flink"] == [{"name": "qa-score-job", "job": "RUNNING", "lifecycle": "STABLE"}]
    assert st["llm_workers"] == {"qa-llm-worker": 2, "qa-llm-worker (desired)": 3}
    if st["topics"]:
        assert [t["ready"] for t in st["topics"]] == ["True", "False"]
    else:
        assert any("kafkatopics.kafka.strimzi.io is not installed" in n for n in st["notes"])
    human = qaflow("-n", NS, kubeconfig=kubeconfig)
    assert human.returncode == 0 and "llm-worker" in human.stdout and "RUNNING" in human.stdout


def test_no_cluster_gives_advice_not_a_traceback(tmp_path: Path) -> None:
    proc = qaflow(kubeconfig=tmp_path / "missing")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "kind create cluster" in proc.stderr
    dead = tmp_path / "dead"
    dead.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "d",
        "clusters": [{"name": "d", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "d", "context": {"cluster": "d", "user": "u"}}],
    }))
    proc = qaflow(kubeconfig=dead)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "cannot reach" in proc.stderr
