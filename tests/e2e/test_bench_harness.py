"""`make bench`'s harness on tiny sizes (bench/suite.py --quick): a test of the harness, not a timed test.

It checks that one run produces the JSON and the Markdown table (timestamped and ``latest``),
with every scenario run and its figures, and the machine's load and nproc beside each; the
figures themselves are not judged (2 shared cores, tiny sizes).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qaflow.devstack.stack import DevStack

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("api", "pipeline", "scoring", "flink", "llm-worker", "first-score")

pytestmark = [pytest.mark.e2e, pytest.mark.flink, pytest.mark.bertscore]


@pytest.mark.timeout(2400)
def test_make_bench_quick_writes_every_scenario_with_the_load(tmp_path: Path,
                                                               require_servers: Callable[[Any], None]) -> None:
    pytest.importorskip("bert_score")
    pytest.importorskip("aiohttp")
    require_servers(DevStack(tmp_path / "check"))
    results = tmp_path / "results"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "suite.py"), "--quick", "--results-dir", str(results)],
                          capture_output=True, text=True, timeout=2300, check=False, cwd=ROOT)
    assert (results / "latest.json").is_file(), done.stderr[-4000:]
    report = json.loads((results / "latest.json").read_text())
    failed = {k: v.get("error") for k, v in report["scenarios"].items() if v["status"] != "ok"}
    assert not failed, failed
    assert done.returncode == 0, done.stderr[-4000:]
    assert tuple(report["scenarios"]) == SCENARIOS
    assert report["quick"] is True
    for name, scenario in report["scenarios"].items():
        assert scenario["rows"], name
        for key in ("load_before", "load_after"):
            assert scenario[key]["nproc"] >= 1, name
            assert scenario[key]["load_1m"] >= 0, name
    stamped = sorted(results.glob("bench-*.json"))
    assert len(stamped) == 1 and stamped[0].with_suffix(".md").is_file()
    table = (results / "latest.md").read_text()
    assert table == stamped[0].with_suffix(".md").read_text()
    assert "load 1 min before → after" in table and "nproc" in table
    for name in SCENARIOS:
        assert f"| {name} |" in table, name
    # the figures a reader looks for are there
    assert report["scenarios"]["api"]["raw"]["post-new"]["p99_ms"] is not None
    assert report["scenarios"]["first-score"]["raw"]["first_llm_answer_to_first_score_s"] > 0
    assert "raw" in report["scenarios"]["scoring"]["raw"]["throughput"]["median"]
    # progress went to stderr the way `qaflow run` shows it (rich), one line per finished scenario
    for name in SCENARIOS:
        assert f"{name}: ok in" in done.stderr, name

