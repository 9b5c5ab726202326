"""The whole loop through the containers: questions go in through the api container, the
llm-worker container asks the fake LLM (on the host), the score job (JobManager + TaskManager
containers from the score-job image) scores each answer through the scorer container
(BERTScore, MiniLM), and the storage-writer container stores the results. The llm-worker
container is SIGKILLed mid-run and comes back by its restart policy; nothing is lost, and
every question ends in exactly one terminal state. Then the helm test pod passes.

Figures (time to ready, counts, the JobManager's peak memory) go to reports/containers.json.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
import requests

from qaflow.datasets import open_dataset
from tests.containers import podman
from tests.containers.conftest import ScoreJob, Stack
from tests.pg import pg_rows, terminal_count

pytestmark = [pytest.mark.containers, pytest.mark.e2e, pytest.mark.flink, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample.csv"
QUESTIONS = 40
TERMINAL = ("validated", "exhausted", "failed")
DONE_WITHIN_S = 600


def figures(update: dict[str, Any]) -> None:
    path = REPO / "reports" / "containers.json"
    path.parent.mkdir(exist_ok=True)
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.update(update)
    path.write_text(json.dumps(data, indent=2, sort_keys=True))


def test_questions_end_once_through_the_containers_across_an_llm_worker_kill(
    stack: Stack, score_job: ScoreJob, capsys: pytest.CaptureFixture[str]
) -> None:
    api = stack.url("api")
    questions = list(islice(open_dataset(SAMPLE), QUESTIONS))
    accepted: list[str] = []

    def post(batch: list) -> None:
        for q in batch:
            body = {"title": q.title, "content": q.content, "reference_answer": q.reference_answer}
            resp = requests.post(f"{api}/v1/questions", json=body, timeout=30)
            assert resp.status_code in (200, 202), resp.text
            accepted.append(resp.json().get("question_id") or resp.json()["id"])

    # Half the questions first; SIGKILL the llm-worker once some are terminal, then the other
    # half, which the killed worker's replacement must pick up (an unloaded machine answers
    # the first half before a kill could land otherwise).
    post(questions[: QUESTIONS // 2])
    worker = stack.container("llm-worker")
    before = podman.inspect("container", worker)
    deadline = time.monotonic() + DONE_WITHIN_S
    while terminal_count(stack.pg_url) < 3:
        assert time.monotonic() < deadline, podman.logs(worker)
        time.sleep(0.5)
    at_kill = terminal_count(stack.pg_url)
    # SIGKILL the container's process, as the OOM killer or a crash would. (`podman kill` counts
    # as a stop by the user, after which podman, unlike a kubelet, does not restart it.)
    os.kill(int(before["State"]["Pid"]), signal.SIGKILL)
    post(questions[QUESTIONS // 2 :])
    assert len(set(accepted)) == QUESTIONS
    assert at_kill < QUESTIONS, "everything was done before the kill: nothing tested"
    # Back by the pod's restart policy (Always for a Deployment), and ready again.
    while True:
        after = podman.inspect("container", worker)
        if after["RestartCount"] > before["RestartCount"] and after["State"]["Status"] == "running":
            break
        assert time.monotonic() < deadline, f"the llm-worker did not come back: {after['State']}"
        time.sleep(0.5)
    probe = stack.deployment("llm-worker")["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]
    podman.wait_http(f"http://127.0.0.1:{probe['port']}{probe['path']}", worker, timeout=120)
    assert after["State"]["StartedAt"] != before["State"]["StartedAt"]

    # Every question reaches a terminal state, and exactly one.
    statuses: dict[str, str] = {}
    while len(statuses) < QUESTIONS:
        assert time.monotonic() < deadline, (
            f"{QUESTIONS - len(statuses)} not terminal\n{score_job.app.logs(20)}\n{podman.logs(worker, 20)}"
        )
        for qid in accepted:
            if qid not in statuses:
                status = requests.get(f"{api}/v1/questions/{qid}", timeout=10).json().get("status")
                if status in TERMINAL:
                    statuses[qid] = status
        time.sleep(2)
    rows = pg_rows(stack.pg_url, "SELECT question_id, status FROM results")
    per_question = Counter(r[0] for r in rows)
    assert set(per_question) == set(accepted), "results for questions never asked, or some missing"
    assert set(per_question.values()) == {1}, [q for q, n in per_question.items() if n > 1]
    assert {r[0]: r[1] for r in rows} == statuses, "the api and PostgreSQL disagree"
    attempts = pg_rows(stack.pg_url, "SELECT question_id, generation FROM attempts")
    assert len(attempts) == len(set(attempts)), "an attempt stored twice"
    scored = Counter(q for q, _ in attempts)
    assert set(scored) == set(accepted), "a question without a scored attempt"
    by_status = Counter(statuses.values())
    stats = requests.get(f"{api}/v1/stats", timeout=10).json()
    ready = {k: round(v, 1) for k, v in stack.ready_s.items()}
    figures({
        "e2e": {"questions": QUESTIONS, "terminal": dict(by_status), "attempts": len(attempts),
                "terminal_at_kill": at_kill, "llm_worker_restarts": after["RestartCount"]},
        "seconds_to_ready_after_play": ready,
        "score_job_running_after_s": round(score_job.running_after_s, 1),
    })
    with capsys.disabled():
        print(f"\ncontainers e2e: {QUESTIONS} questions, terminal {dict(by_status)}, {len(attempts)} scored "
              f"attempts; llm-worker SIGKILLed at {at_kill} terminal, restarts {after['RestartCount']}; "
              f"api stats {stats.get('by_status')}; ready after play {ready}; "
              f"score job running after {score_job.running_after_s:.0f} s")


def test_helm_test_pod_passes(stack: Stack, score_job: ScoreJob, tmp_path: Path) -> None:
    """The chart's test pod (helm.sh/hook: test), from the api image with the chart's
    securityContext, submits a question and exits 0 once it is terminal."""
    services = [d["metadata"]["name"] for d in stack.docs if d["kind"] == "Service"]
    [pod] = [d for d in podman.playable(stack.docs, services) if d["kind"] == "Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    [c] = pod["spec"]["containers"]
    assert c["image"] == podman.image_ref("api")
    manifest = tmp_path / "test-pod.yaml"
    name = podman.container_name(pod, c["name"])
    timeout = float(next(e["value"] for e in c["env"] if e["name"] == "TIMEOUT_S"))
    try:
        podman.play([pod], manifest)
        deadline = time.monotonic() + timeout + 30
        while time.monotonic() < deadline:
            state = podman.inspect("container", name)["State"]
            if state["Status"] == "exited":
                break
            time.sleep(1)
        out = podman.logs(name)
        assert state["Status"] == "exited" and state["ExitCode"] == 0, f"{state}\n{out}"
        assert "terminal state:" in out, out
        info = podman.inspect("container", name)
        assert info["HostConfig"]["ReadonlyRootfs"] and info["Config"]["User"].startswith("10001")
    finally:
        podman.down(manifest, [pod])


def test_the_jobmanager_memory_is_set_from_the_measurement(score_job: ScoreJob) -> None:
    """The JobManager container (JVM + the PyFlink driver, application mode) fits the chart's
    jobManager memory with room: its peak is recorded, and stays under 85% of the size."""
    from tests.containers.flink import parse_size

    jm = score_job.app.jobmanager
    assert jm in score_job.peak, "no memory sample of the JobManager"
    size = parse_size(str(score_job.app.spec["jobManager"]["resource"]["memory"]))
    peak = score_job.peak[jm]
    figures({"jobmanager": {"peak_mib": round(peak / 2**20), "size_mib": round(size / 2**20)},
             "taskmanager": {"peak_mib": round(score_job.peak.get(score_job.app.taskmanager, 0) / 2**20)}})
    assert peak < 0.85 * size, f"JobManager peak {peak / 2**20:.0f} MiB of {size / 2**20:.0f} MiB"
