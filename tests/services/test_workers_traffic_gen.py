"""traffic-gen: the arrival processes, the repeat plan, and a run against a small stand-in api."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from itertools import islice, pairwise
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from qaflow.datasets import open_dataset
from qaflow.devstack.ports import free_port
from qaflow.services.traffic_gen.__main__ import main
from qaflow.services.traffic_gen.arrivals import BURST_CYCLE_S, BURST_FACTOR, arrival_times, plan
from qaflow.services.traffic_gen.report import percentile

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample.csv"


def test_uniform_arrivals_are_evenly_spaced() -> None:
    assert list(islice(arrival_times("uniform", 4.0, random.Random(0)), 5)) == [0.0, 0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize("distribution", ["poisson", "bursty", "uniform"])
def test_every_distribution_keeps_the_mean_rate(distribution: str) -> None:
    times = list(islice(arrival_times(distribution, 20.0, random.Random(1)), 20_000))
    assert times == sorted(times)
    assert len(times) / times[-1] == pytest.approx(20.0, rel=0.04)


def test_poisson_gaps_are_exponential() -> None:
    times = list(islice(arrival_times("poisson", 10.0, random.Random(2)), 20_001))
    gaps = [b - a for a, b in pairwise(times)]
    mean = sum(gaps) / len(gaps)
    var = sum((g - mean) ** 2 for g in gaps) / len(gaps)
    assert mean == pytest.approx(0.1, rel=0.03)
    assert var**0.5 == pytest.approx(mean, rel=0.05)  # exponential: sd == mean


def test_bursty_arrivals_come_in_on_phases_at_five_times_the_rate() -> None:
    times = list(islice(arrival_times("bursty", 10.0, random.Random(3)), 20_000))
    on_s = BURST_CYCLE_S / BURST_FACTOR
    assert all(t % BURST_CYCLE_S <= on_s + 1e-9 for t in times)  # nothing in the off phases
    first_on = [t for t in times if t < on_s]
    assert len(first_on) / on_s == pytest.approx(50.0, rel=0.35)  # one on-phase: 5 x 10/s


def test_plan_sends_every_item_once_plus_the_repeat_share() -> None:
    items = list(range(1000))
    planned = list(plan(items, arrival_times("uniform", 100, random.Random(0)), random.Random(4), repeat_share=0.3))
    fresh = [p.item for p in planned if not p.repeat]
    assert fresh == items
    repeats = [p for p in planned if p.repeat]
    assert len(repeats) / len(planned) == pytest.approx(0.3, abs=0.03)
    sent: set[int] = set()
    for p in planned:  # a repeat is always of something sent before it
        assert (p.item in sent) == p.repeat
        sent.add(p.item)


def test_plan_stops_at_the_total_or_the_duration_and_cycles_if_needed() -> None:
    items = ["a", "b", "c"]
    by_total = list(plan(items, arrival_times("uniform", 1, random.Random(0)), random.Random(0), total=7))
    assert [p.item for p in by_total] == ["a", "b", "c", "a", "b", "c", "a"]
    assert [p.repeat for p in by_total] == [False] * 3 + [True] * 4
    by_time = list(plan(items, arrival_times("uniform", 2, random.Random(0)), random.Random(0), duration_s=2.0))
    assert [p.at_s for p in by_time] == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 90), percentile(values, 99)) == (50.0, 90.0, 99.0)
    assert percentile([], 50) is None


class StandInApi:
    """POST answers 202 the first time and 200 from the "cache" after; GET says validated."""

    def __init__(self, refuse_first: int = 0) -> None:
        self.refuse_left = refuse_first  # answer the first N POSTs 503 (Retry-After: 0)
        self.seen: dict[str, int] = {}
        self.run_ids: set[str] = set()
        self.lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def app(self, environ: dict[str, Any], start: Any) -> Any:
        from qaflow.core.ids import question_id

        req = Request(environ)
        if req.method == "POST":
            with self.lock:
                refuse, self.refuse_left = self.refuse_left > 0, max(0, self.refuse_left - 1)
            if refuse:
                return Response('{"detail": "busy"}', 503, {"Retry-After": "0"})(environ, start)
            body = req.get_json()
            qid = question_id(body["title"], body.get("content", ""))
            with self.lock:
                self.run_ids.add(body["run_id"])
                n = self.seen[qid] = self.seen.get(qid, 0) + 1
            if n == 1:
                resp = Response(json.dumps({"id": qid, "status": "queued", "source": "queued"}), 202)
            else:
                resp = Response(json.dumps({"id": qid, "status": "validated", "source": "cache"}), 200)
        else:
            resp = Response(json.dumps({"id": req.path.rsplit("/", 1)[1], "status": "validated"}), 200)
        resp.mimetype = "application/json"
        return resp(environ, start)

    def __enter__(self) -> StandInApi:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api(request: pytest.FixtureRequest) -> Iterator[StandInApi]:
    with StandInApi(getattr(request, "param", 0)) as a:
        yield a


def test_traffic_gen_run_reports_codes_sources_latency_and_terminal_counts(
    api: StandInApi, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in __import__("os").environ if k.startswith("QAFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("QAFLOW_TRAFFIC_REPEAT_SHARE", "0.3")  # env defaults, as in a container
    ids_file = tmp_path / "ids.txt"
    code = main(["--api-url", api.url, "--dataset", str(SAMPLE), "--rate", "400", "--distribution", "uniform",
                 "--total", "60", "--wait-s", "10", "--run-id", "t1", "--http-port", str(free_port()),
                 "--log-format", "text", "--json", "--ids-file", str(ids_file)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["requests"] == 60 and out["run_id"] == "t1" and api.run_ids == {"t1"}
    unique = len(api.seen)
    assert out["unique_questions"] == unique == 60 - out["repeats"]
    # (a repeat sent right after its original may overtake it: then the repeat gets the 202)
    assert out["accepted_202"] == unique and out["ok_200"] == out["repeats"] > 5
    assert out["accepted_questions"] == unique and out["refused_questions"] == 0
    assert sum(out["repeat_sources"].values()) == out["repeats"]
    assert out["sources"] == {"queued": unique, "cache": out["repeats"]}
    assert out["errors"] == {}
    assert out["latency_ms"]["p50"] is not None and out["latency_ms"]["p50"] <= out["latency_ms"]["p99"]
    assert out["terminal"] == {"validated": unique, "exhausted": 0, "failed": 0} and out["not_terminal"] == 0
    expected = {q.id for q in islice(open_dataset(SAMPLE), unique)}
    assert set(ids_file.read_text().split()) == expected


@pytest.mark.parametrize("api", [3], indirect=True)
def test_traffic_gen_retries_refusals_like_a_careful_client(
    api: StandInApi, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--api-url", api.url, "--dataset", str(SAMPLE), "--rate", "200", "--total", "3", "--workers", "1",
                 "--http-port", str(free_port()), "--log-format", "text", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["errors"] == {"503": 3}  # every refusal is reported ...
    assert out["final_codes"] == {"202": 3} and out["attempts"] == 6  # ... and retried until accepted
    assert out["accepted_questions"] == 3 and out["refused_questions"] == 0


def test_traffic_gen_counts_connection_errors_and_bad_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids_file = tmp_path / "ids.txt"
    code = main(["--api-url", f"http://127.0.0.1:{free_port()}", "--dataset", str(SAMPLE), "--rate", "500",
                 "--total", "5", "--retries", "1", "--http-port", str(free_port()), "--log-format", "text", "--json",
                 "--wait-s", "30", "--ids-file", str(ids_file)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["errors"] == {"error:ConnectionError": 10}
    assert out["refused_questions"] == 5 and out["accepted_questions"] == 0
    assert out["waited_s"] < 5  # nothing accepted: nothing to wait for
    assert ids_file.read_text() == ""
    assert main(["--rate", "-1"]) == 2
    assert "--rate: Input should be greater than 0" in capsys.readouterr().err  # the option, as typed


def test_traffic_gen_idles_after_its_run_when_asked(api: StandInApi, tmp_path: Path) -> None:
    """QAFLOW_TRAFFIC_IDLE (set by the chart): once the data set is sent the process stays up
    and healthy until SIGTERM, so its Deployment does not restart it into CrashLoopBackOff."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import requests

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QAFLOW_")}
    env.update(QAFLOW_TRAFFIC_IDLE="true", QAFLOW_LOG_FORMAT="text")
    out = tmp_path / "out.json"
    with out.open("wb") as stdout:
        proc = subprocess.Popen(
            [sys.executable, "-m", "qaflow.services.traffic_gen", "--api-url", api.url, "--dataset", str(SAMPLE),
             "--rate", "200", "--total", "3", "--http-port", str(port), "--json"],
            env=env, stdout=stdout, stderr=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 60
        while not out.read_text().strip().endswith("}"):
            assert proc.poll() is None, f"exited {proc.returncode} before idling"
            assert time.monotonic() < deadline, "no report"
            time.sleep(0.2)
        assert json.loads(out.read_text())["requests"] == 3
        time.sleep(1.5)
        assert proc.poll() is None, "exited after its run"
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
