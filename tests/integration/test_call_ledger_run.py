"""`qaflow run` and `qaflow trace` over the call ledger: exact retry counts, cost, a question's timeline."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from qaflow.core.cost import format_usd
from qaflow.core.settings import EmbeddedSettings, load
from qaflow.pipeline.embedded import EmbeddedPipeline
from qaflow.scoring.lexical import LexicalScorer
from tests.integration.test_embedded_run import SAMPLE, qaflow, run_json

FAULTS = {"QAFLOW_LLM_SIM_RATE_429": "0.2", "QAFLOW_LLM_SIM_RATE_503": "0.05", "QAFLOW_LLM_SIM_RETRY_AFTER_S": "0.01",
          "QAFLOW_RETRY_QUOTA_DELAY_S": "0.01", "QAFLOW_RETRY_OVERLOAD_BASE_S": "0.01",
          "QAFLOW_RETRY_OVERLOAD_CAP_S": "0.02"}
PRICES = {"qaflow-offline-simulator": [0.15, 0.60]}


def test_the_summary_counts_the_ledger_and_the_ledger_counts_every_call(tmp_path: Path) -> None:
    """Retry calls in the summary equal the ledger's; both equal the answer stage's own count of calls."""
    from qaflow.datasets import open_dataset

    db = tmp_path / "q.db"
    settings = load(EmbeddedSettings, FAULTS, store_url=f"sqlite:///{db}", threshold=0.35, run_id="ledger-run")
    pipeline = EmbeddedPipeline(settings, scorer=LexicalScorer())
    try:
        summary = pipeline.run(open_dataset(str(SAMPLE), limit=150), total=150)
        made = pipeline.answer_stage.stats  # counted in process, call by call: an independent reference
    finally:
        pipeline.close()
    with sqlite3.connect(db) as conn:
        rows, retries, quota = conn.execute(
            "SELECT COUNT(*), SUM(delivery > 1), SUM(status = 'quota') FROM llm_calls WHERE run_id = 'ledger-run'"
        ).fetchone()
    assert made.retry_calls > 0 and made.errors.get("quota", 0) > 0  # the simulator's 429s happened
    assert summary.retry_calls == retries == made.retry_calls
    assert summary.llm_calls == rows == made.calls
    assert summary.first_calls + summary.regeneration_calls + summary.retry_calls == rows
    assert summary.llm_errors.get("quota") == quota == made.errors["quota"]
    assert summary.cost is None and summary.to_dict()["cost"] is None  # no price table


def test_a_run_with_a_price_table_shows_its_cost_in_the_summary_and_the_report(tmp_path: Path) -> None:
    db, report = tmp_path / "q.db", tmp_path / "report.html"
    env = {**FAULTS, "QAFLOW_LLM_PRICES": json.dumps(PRICES)}
    out = run_json("--dataset", str(SAMPLE), "--scorer", "lexical", "--threshold", "0.35", "--limit", "60",
                   "--store", f"sqlite:///{db}", "--report", str(report), env=env)
    expected = out["prompt_tokens"] / 1e6 * 0.15 + out["completion_tokens"] / 1e6 * 0.60
    assert out["cost"] == pytest.approx(expected, rel=1e-6) and out["cost"] > 0
    assert sum(out["cost_by_kind"].values()) == pytest.approx(out["cost"], rel=1e-6)
    assert out["cost_by_kind"]["regeneration"] > 0 and out["cost_by_kind"]["retry"] > 0
    assert out["cost_per_question"] == pytest.approx(out["cost"] / 60, rel=1e-4)
    html = report.read_text()
    assert f"Cost: {format_usd(out['cost'])} in all" in html
    assert 'alt="cost"' in html and 'alt="quality_vs_cost"' in html  # the threshold study in money
    text = qaflow("run", "--dataset", str(SAMPLE), "--scorer", "lexical", "--limit", "5",
                  "--store", f"sqlite:///{tmp_path / 'other.db'}", env=env)
    assert text.returncode == 0 and "cost" in text.stdout and "$" in text.stdout, text.stdout
    no_price = run_json("--dataset", str(SAMPLE), "--scorer", "lexical", "--limit", "5",
                        "--store", f"sqlite:///{tmp_path / 'third.db'}")
    assert "cost" in no_price and no_price["cost"] is None


def test_qaflow_trace_shows_a_429_and_a_regeneration_in_order(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    run_json("--dataset", str(SAMPLE), "--scorer", "lexical", "--threshold", "0.35", "--limit", "80",
             "--store", f"sqlite:///{db}", env=FAULTS)
    with sqlite3.connect(db) as conn:  # a question that met a 429 and was regenerated
        (qid,) = conn.execute(
            "SELECT question_id FROM llm_calls GROUP BY question_id "
            "HAVING SUM(status = 'quota') > 0 AND MAX(generation) > 1 ORDER BY question_id LIMIT 1"
        ).fetchone()
        calls = conn.execute("SELECT generation, delivery, status FROM llm_calls WHERE question_id = ? "
                             "ORDER BY generation, delivery", (qid,)).fetchall()
        scores = conn.execute("SELECT generation, decision FROM attempts WHERE question_id = ? ORDER BY generation",
                              (qid,)).fetchall()
        (status,) = conn.execute("SELECT status FROM results WHERE question_id = ?", (qid,)).fetchone()

    proc = qaflow("trace", qid, "--store", f"sqlite:///{db}", "--json")
    assert proc.returncode == 0, proc.stderr
    events = json.loads(proc.stdout)["events"]
    expected: list[tuple[str, object, object]] = [("submitted", None, None)]
    for generation, decision in scores:
        for g, d, outcome in calls:
            if g == generation:
                expected.append(("call", g, outcome))
                if outcome != "ok":
                    expected.append(("retry_wait", g, d))
        expected.append(("score", generation, decision))
    expected.append(("terminal", None, status))
    got = [(e["step"], e.get("generation"),
            e.get("outcome") or e.get("decision") or e.get("status") or e.get("delivery")) for e in events]
    assert got == expected
    assert any(e["step"] == "call" and e["outcome"] == "quota" for e in events)
    assert any(e["step"] == "score" and e["decision"] == "regenerate" for e in events)
    times = [e["at"] for e in events]
    assert times == sorted(times), "one process, one clock: the pipeline order is also the time order"

    table = qaflow("trace", qid.upper(), "--store", f"sqlite:///{db}")  # the text form, any case of id
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    order = [next(i for i, line in enumerate(lines) if f" {step} " in line)
             for step in ("submitted", "call", "retry_wait", "score", "terminal")]
    assert order[0] < order[1] and order[-1] == max(order)
    assert "quota" in table.stdout and "regenerate" in table.stdout
    missing = qaflow("trace", "0" * 32, "--store", f"sqlite:///{db}")
    assert missing.returncode == 2 and "no question" in missing.stderr and "qaflow trace --list" in missing.stderr


@pytest.mark.integration
def test_qaflow_trace_reads_postgresql_too(pg_url: str) -> None:
    """The same trace from a PostgreSQL store: a question whose first call met a 503, then was answered."""
    from qaflow.core.messages import CallRecord, QuestionMessage
    from qaflow.store import open_store
    from qaflow.store.base import WriteBatch

    q = QuestionMessage.new("Why is the sea salty?", "", "Rivers carry dissolved minerals to it.")
    store = open_store(pg_url)
    store.start()
    try:
        store.record_question(q)
        t0 = q.submitted_at
        calls = [CallRecord(question_id=q.question_id, generation=1, delivery=d, provider="openai", model="m",
                            status=s, latency_ms=12.0, retry_wait_s=w, started_at=t0 + d, finished_at=t0 + d + 0.01)
                 for d, s, w in [(1, "overload", 0.25), (2, "ok", None)]]
        store.write(WriteBatch(calls=calls))
        store.write(WriteBatch(calls=calls))  # redelivered: still two calls
    finally:
        store.close()
    proc = qaflow("trace", q.question_id, "--store", pg_url, "--json")
    assert proc.returncode == 0, proc.stderr
    trace = json.loads(proc.stdout)
    assert trace["status"] == "queued"
    assert [(e["step"], e.get("delivery")) for e in trace["events"]] == [
        ("submitted", None), ("call", 1), ("retry_wait", 1), ("call", 2)]
    assert trace["events"][2]["wait_s"] == 0.25


def test_qaflow_trace_without_an_id_lists_the_recent_questions(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    store = ("--store", f"sqlite:///{db}")
    empty = qaflow("trace", *store)
    assert empty.returncode == 0 and "no questions in" in empty.stdout
    run_json("--dataset", str(SAMPLE), "--scorer", "lexical", "--limit", "6", "--run-id", "first", *store)
    run_json("--dataset", str(SAMPLE), "--scorer", "lexical", "--limit", "9", "--run-id", "second", *store)
    with sqlite3.connect(db) as conn:
        newest = [q for (q,) in conn.execute("SELECT question_id FROM questions "
                                              "ORDER BY submitted_at DESC, question_id LIMIT 4")]
        status, score, answers = conn.execute(
            "SELECT r.status, r.score, (SELECT COUNT(*) FROM attempts a WHERE a.question_id = r.question_id) "
            "FROM results r WHERE question_id = ?", (newest[0],)).fetchone()

    listed = qaflow("trace", "--json", "--limit", "4", *store)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["question_id"] for r in rows] == newest
    assert (rows[0]["status"], rows[0]["score"], rows[0]["answers"]) == (status, pytest.approx(score), answers)
    assert rows[0]["calls"] >= answers >= 1 and rows[0]["run_id"] == "second"
    assert {r["run_id"] for r in json.loads(qaflow("trace", "--list", "--json", "--run-id", "first", *store).stdout)} \
        == {"first"}

    table = qaflow("trace", "--list", *store)  # the default limit, as a table
    assert table.returncode == 0, table.stderr
    assert "9 most recent questions" in table.stdout and newest[0] in table.stdout  # the first 6 are among the 9
    assert f"qaflow trace {newest[0]}" in table.stdout
    both = qaflow("trace", newest[0], "--list", *store)
    assert both.returncode == 2 and "not both" in both.stderr
    none = qaflow("trace", "--list", "--run-id", "answered-from-the-store", *store)  # not "look in another store"
    assert none.returncode == 0 and "no questions of run answered-from-the-store in" in none.stdout
