"""`qaflow run` end to end, as a user runs it: a subprocess, a SQLite file, JSON on stdout."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample.csv"
REQUIRED_KEYS = {
    "questions", "validated", "exhausted", "failed", "llm_calls", "regeneration_calls", "retry_calls",
    "mean_score_by_generation", "cache_hits", "elapsed_s",
}


def qaflow(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QAFLOW_")}
    return subprocess.run(
        [sys.executable, "-m", "qaflow.cli.main", *args], capture_output=True, text=True, timeout=600,
        env={**clean, **(env or {})}, check=False,
    )


def run_json(*args: str, env: dict[str, str] | None = None) -> dict:
    proc = qaflow("run", "--json", *args, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def terminal_rows(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        (dup,) = conn.execute("SELECT COUNT(*) - COUNT(DISTINCT question_id) FROM results").fetchone()
        assert dup == 0
        return dict(conn.execute("SELECT status, COUNT(*) FROM results GROUP BY status").fetchall())


def test_lexical_run_every_question_one_terminal_state_then_cache_hits(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    args = ("--dataset", str(SAMPLE), "--scorer", "lexical", "--threshold", "0.35", "--store", f"sqlite:///{db}")
    first = run_json(*args)
    assert first.keys() >= REQUIRED_KEYS
    n = first["questions"]
    assert n >= 200 and first["unique_questions"] == n
    assert first["validated"] + first["exhausted"] + first["failed"] == n
    assert first["llm_calls"] == first["first_calls"] + first["regeneration_calls"] + first["retry_calls"]
    assert first["regeneration_calls"] > 0 and first["exhausted"] > 0
    assert first["mean_final_score"] > first["mean_first_score"]  # the loop bought quality
    rows = terminal_rows(db)
    assert sum(rows.values()) == n
    assert rows.get("validated", 0) == first["validated"]

    second = run_json(*args)
    assert second["llm_calls"] == 0 and second["cache_hits"] == n
    assert (second["validated"], second["exhausted"]) == (first["validated"], first["exhausted"])
    assert terminal_rows(db) == rows


def test_faults_are_retried_and_permanent_ones_fail(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    env = {
        "QAFLOW_LLM_SIM_RATE_429": "0.15", "QAFLOW_LLM_SIM_RATE_503": "0.15", "QAFLOW_LLM_SIM_RATE_MALFORMED": "0.03",
        "QAFLOW_LLM_SIM_RETRY_AFTER_S": "0.05", "QAFLOW_RETRY_OVERLOAD_BASE_S": "0.02",
        "QAFLOW_RETRY_OVERLOAD_CAP_S": "0.1", "QAFLOW_MAX_DELIVERY_ATTEMPTS": "4",
    }
    out = run_json("--dataset", str(SAMPLE), "--scorer", "lexical", "--threshold", "0.35", "--limit", "120",
                   "--store", f"sqlite:///{db}", env=env)
    assert out["questions"] == 120
    assert out["retry_calls"] > 0 and out["llm_errors"].get("quota", 0) > 0 and out["llm_errors"].get("overload", 0) > 0
    assert out["failed"] > 0 and out["dead_letters"] >= out["failed"]
    assert out["validated"] + out["exhausted"] + out["failed"] == 120
    assert sum(terminal_rows(db).values()) == 120


@pytest.mark.bertscore
def test_real_bertscore_run_with_report(tmp_path: Path) -> None:
    db, report = tmp_path / "q.db", tmp_path / "report.html"
    out = run_json("--dataset", str(SAMPLE), "--limit", "60", "--store", f"sqlite:///{db}", "--report", str(report))
    assert out["scorer"]["name"] == "bertscore" and "MiniLM" in out["scorer"]["model"]
    assert out["validated"] + out["exhausted"] + out["failed"] == 60
    assert out["validated"] > 0 and out["regeneration_calls"] > 0
    gens = out["mean_score_by_generation"]
    assert set(gens) >= {"1", "2"}
    html = report.read_text()
    assert html.count("data:image/png;base64,") == 4 and "Threshold study" in html


def test_json_leaves_stderr_empty_where_it_is_not_a_terminal(tmp_path: Path) -> None:
    """A script reading --json's stdout and logging stderr sees nothing there: no bar, no blank line."""
    proc = qaflow("run", "--json", "--dataset", str(SAMPLE), "--scorer", "lexical", "--limit", "10",
                  "--store", f"sqlite:///{tmp_path / 'q.db'}")
    assert proc.returncode == 0 and json.loads(proc.stdout)["questions"] == 10
    assert proc.stderr == ""


def test_a_bad_option_is_one_line_naming_the_option_before_any_progress(tmp_path: Path) -> None:
    proc = qaflow("run", "--dataset", str(SAMPLE), "--scorer", "lexical", "--store", "foo://bar")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "Error: --store: unsupported scheme 'foo' (use sqlite:///path or postgresql://user:pass@host/db)"]
    bad = tmp_path / "bad.csv"
    bad.write_text('"1","ok title","","an answer"\n"2","x""y,"z\n')
    proc = qaflow("run", "--dataset", str(bad), "--scorer", "lexical", "--store", f"sqlite:///{tmp_path / 'q.db'}")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # no bar above it


def test_malformed_dataset_gives_file_and_line_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b'"1","ok title","","an answer"\n"2","broken \xff\xfe title","","x"\n')
    proc = qaflow("run", "--dataset", str(bad), "--scorer", "lexical", "--store", f"sqlite:///{tmp_path / 'q.db'}")
    assert proc.returncode == 2  # could not start (docs/cli.md, exit codes)
    assert "bad.csv:2" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_configuration_is_one_clear_line(tmp_path: Path) -> None:
    proc = qaflow("run", "--scorer", "lexical", env={"QAFLOW_THRESHOLD": "2"})
    assert proc.returncode == 2
    assert "QAFLOW_THRESHOLD" in proc.stderr and "Traceback" not in proc.stderr


def walk(cmd: click.Command, path: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from walk(sub, (*path, name))


def test_every_command_and_option_has_help() -> None:
    from qaflow.cli.main import cli

    missing = [
        f"qaflow {' '.join(path)} {param.opts[0]}"
        for path, cmd in walk(cli)
        for param in cmd.params
        if isinstance(param, click.Option) and not param.help and param.opts[0] != "--help"
    ]
    assert not missing, missing
    assert all(cmd.help for path, cmd in walk(cli)), [p for p, c in walk(cli) if not c.help]


def test_help_runs_for_every_command() -> None:
    from qaflow.cli.main import cli

    for path, _ in walk(cli):
        proc = qaflow(*path, "--help")
        assert proc.returncode == 0 and "Usage:" in proc.stdout, (path, proc.stderr)
