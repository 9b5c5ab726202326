"""The call ledger with every service as its own process, on real Kafka, PostgreSQL and Redis.

The fake LLM server counts every request it answers (``GET /_stats``): that count is the
reference. After the run the ledger (``llm_calls``, written by the storage-writer from the
llm-worker's ``qa.calls`` records) must hold exactly one row per answered request, with the
same split by outcome; the dashboard, the api's trace and the llm-worker's cost counter read
the same numbers. No process is killed here (the crash test is test_services_e2e.py), so
no call is legitimately repeated.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import requests

from qaflow.core.cost import format_usd
from tests.pg import pg_rows

from .conftest import ServiceStack
from .loop import start_flaky_llm

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(600)]

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample.csv"
QUESTIONS = 60
PRICES = {"*": [0.15, 0.60]}  # USD per million input / output tokens


def ledger_rows(pg_url: str) -> int:
    return int(pg_rows(pg_url, "SELECT COUNT(*) FROM llm_calls")[0][0])


def metric(text: str, name: str) -> float:
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M))


def test_the_ledger_holds_one_row_per_call_the_llm_server_answered(
    stack: ServiceStack, capsys: pytest.CaptureFixture[str]
) -> None:
    pg_url = stack.backends.store_url
    fake = start_flaky_llm(stack, QAFLOW_LLM_PRICES=json.dumps(PRICES), QAFLOW_MAX_DELIVERY_ATTEMPTS="8")
    procs = [stack.start(name) for name in ("storage-writer", "api", "llm-worker", "retry-worker", "score-worker")]
    for proc in procs:
        proc.wait_ready(90)
    api, llm = stack.procs["api"], stack.procs["llm-worker"]
    dashboard = stack.start("dashboard", QAFLOW_DASHBOARD_REFRESH_S="1")
    dashboard.wait_ready(90)

    traffic = stack.start(
        "traffic-gen", "--json",
        QAFLOW_TRAFFIC_API_URL=api.url, QAFLOW_TRAFFIC_DATASET=str(SAMPLE), QAFLOW_TRAFFIC_RATE="30",
        QAFLOW_TRAFFIC_TOTAL=str(QUESTIONS), QAFLOW_TRAFFIC_REPEAT_SHARE="0", QAFLOW_TRAFFIC_WAIT_S="240",
    )
    code, out = traffic.output(timeout_s=300)
    assert code == 0, traffic.tail()
    assert json.loads(out)["not_terminal"] == 0

    # Every question is terminal; the last call records may still be on their way to the store.
    stats = requests.get(fake.url + "/_stats", timeout=5).json()
    deadline = time.monotonic() + 60
    while ledger_rows(pg_url) < stats["total"] and time.monotonic() < deadline:
        time.sleep(0.5)
        stats = requests.get(fake.url + "/_stats", timeout=5).json()
    time.sleep(2)  # and nothing more arrives after that
    stats = requests.get(fake.url + "/_stats", timeout=5).json()
    by_status = dict(pg_rows(pg_url, "SELECT status, COUNT(*) FROM llm_calls GROUP BY status"))
    rows = ledger_rows(pg_url)
    assert rows == stats["total"], (rows, stats)
    assert by_status == {k: v for k, v in {"ok": stats["by_status"].get("200", 0),
                                           "quota": stats["by_status"].get("429", 0),
                                           "overload": stats["by_status"].get("503", 0)}.items() if v}
    assert by_status["quota"] > 0 and by_status["overload"] > 0
    ((retries, regenerations, cost),) = pg_rows(
        pg_url, "SELECT SUM(CASE WHEN delivery > 1 THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN delivery = 1 AND generation > 1 THEN 1 ELSE 0 END), SUM(cost_usd) FROM llm_calls")
    assert retries > 0 and regenerations > 0 and cost > 0

    # The dashboard counts the same calls and shows their cost; the llm-worker's counter agrees.
    summary = requests.get(dashboard.url + "/api/summary", timeout=10).json()
    assert summary["loop"]["llm_calls"] == rows and summary["loop"]["retry_calls"] == retries
    assert summary["cost"]["usd"] == pytest.approx(cost, rel=1e-6)
    page = requests.get(dashboard.url + "/", timeout=10).text
    shown = format_usd(summary["cost"]["usd"])
    assert f'data-k="cost_text.usd" data-f="text">{shown}<' in page, "the page shows the cost, in the money format"
    counted = metric(requests.get(llm.url + "/metrics", timeout=10).text, "qaflow_llm_cost_usd_total")
    assert counted == pytest.approx(cost, rel=1e-6)

    # The api's trace of a question that met a 429: the call, its wait, then the next delivery.
    ((qid,),) = pg_rows(pg_url, "SELECT question_id FROM llm_calls WHERE status = 'quota' "
                                "ORDER BY question_id LIMIT 1")
    trace = requests.get(f"{api.url}/v1/questions/{qid}?detail=trace", timeout=10).json()["trace"]
    steps = [e["step"] for e in trace["events"]]
    assert steps[0] == "submitted" and steps[-1] == "terminal"
    i = next(i for i, e in enumerate(trace["events"]) if e.get("outcome") == "quota")
    assert steps[i + 1] == "retry_wait" and steps[i + 2] == "call"

    with capsys.disabled():
        print(f"\nledger e2e: {QUESTIONS} questions, fake LLM answered {stats['total']} {stats['by_status']}; "
              f"ledger rows {rows} {by_status}; retries {retries}, regenerations {regenerations}; "
              f"cost ${cost:.6f}")
