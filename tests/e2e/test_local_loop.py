"""The local services show the same loop as the embedded run (issue 14, item 7).

The fake LLM answers the sample's questions with the offline simulator's quality model
(``--references``, as ``qaflow dev up --services`` starts it), the services score lexically at
the default threshold, and every question ends exactly as it does in ``qaflow run`` with the
in-process simulator: same status, same number of generations, same score.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from qaflow.cli.main import cli
from tests.pg import pg_rows

from .conftest import ServiceStack

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample.csv"
DONE_WITHIN_S = 300
pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(600)]


def _embedded(tmp_path: Path) -> dict[str, tuple[str, int, float]]:
    db = tmp_path / "embedded.db"
    result = CliRunner().invoke(cli, ["run", "--dataset", str(SAMPLE), "--scorer", "lexical", "--llm", "offline",
                                      "--seed", "0", "--store", f"sqlite:///{db}", "--json"])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT question_id, status, generations, score FROM results").fetchall()
    return {r[0]: (r[1], r[2], round(r[3], 6)) for r in rows}


def test_the_services_regenerate_like_the_embedded_run(
    stack: ServiceStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = stack.start_fake_llm("--latency-ms", "5", "--references", str(SAMPLE), "--seed", "0")
    stack.config = {"QAFLOW_LOG_FORMAT": "text", "QAFLOW_LLM_PROVIDER": "openai", "QAFLOW_LLM_BASE_URL": fake.url,
                    "QAFLOW_SCORER": "lexical"}  # the default threshold (0.80) and generations (3)
    services = [stack.start(name) for name in ("storage-writer", "api", "llm-worker", "retry-worker", "score-worker")]
    for proc in services:
        proc.wait_ready(120)
    traffic = stack.start(
        "traffic-gen", "--json",
        QAFLOW_TRAFFIC_API_URL=stack.procs["api"].url, QAFLOW_TRAFFIC_DATASET=str(SAMPLE),
        QAFLOW_TRAFFIC_RATE="50", QAFLOW_TRAFFIC_TOTAL="210", QAFLOW_TRAFFIC_REPEAT_SHARE="0",
        QAFLOW_TRAFFIC_WAIT_S=str(DONE_WITHIN_S),
    )
    code, out = traffic.output(timeout_s=DONE_WITHIN_S + 60)
    assert code == 0, traffic.tail()
    assert json.loads(out)["not_terminal"] == 0
    rows = pg_rows(stack.backends.store_url, "SELECT question_id, status, generations, score FROM results")
    services_run = {r[0]: (r[1], r[2], round(r[3], 6)) for r in rows}
    embedded = _embedded(tmp_path)
    assert len(services_run) == len(embedded) == 210
    assert services_run == embedded
    regenerated_and_validated = sum(1 for s, g, _ in services_run.values() if s == "validated" and g > 1)
    assert regenerated_and_validated > 0  # the loop shows
    with capsys.disabled():
        print(f"\nlocal loop: {dict(Counter(s for s, _, _ in services_run.values()))}, "
              f"{regenerated_and_validated} validated after regeneration; identical to `qaflow run` offline")
