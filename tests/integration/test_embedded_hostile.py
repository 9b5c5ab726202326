"""Hostile inputs through `qaflow run` (issue 9), as a user meets them: a subprocess, the real
OpenAI-compatible client against the scripted fake LLM, a SQLite file, JSON on stdout.

Every run must end with each question in a terminal state or counted as a skipped row,
never a traceback. On the old main the JSONL run died in ``ids.question_id`` with a
``UnicodeEncodeError`` and the CSV run with "field larger than field limit".
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from qaflow.llm.fake_server import FakeLlmServer, Scripted
from tests.integration.test_embedded_run import qaflow

LONG_ANSWER = ("It goes stale. " * 4_247)[:63_700]  # a local model's repetition loop


def openai_reply(content: str, finish: str = "stop") -> Scripted:
    return Scripted(200, body={"id": "x", "object": "chat.completion", "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}]})


@pytest.fixture
def fake() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as server:
        yield server


def run(fake: FakeLlmServer, dataset: Path, tmp_path: Path, *extra: str) -> tuple[dict, Path]:
    db = tmp_path / "q.db"
    report = tmp_path / "report.html"
    proc = qaflow("run", "--json", "--dataset", str(dataset), "--llm", "openai", "--scorer", "lexical",
                  "--threshold", "0.0", "--max-generations", "1", "--concurrency", "1",
                  "--store", f"sqlite:///{db}", "--report", str(report), *extra,
                  env={"QAFLOW_LLM_BASE_URL": fake.url, "QAFLOW_LLM_TIMEOUT_S": "10"})
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), db


def statuses(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT status, COUNT(*) FROM results GROUP BY status").fetchall())


def test_lone_surrogate_row_nul_answer_and_over_long_answer_end_in_terminal_states(
    fake: FakeLlmServer, tmp_path: Path
) -> None:
    rows = [
        {"topic": 0, "question_title": "Why does bread go stale \ud800?", "question_content": "",
         "best_answer": "Its starch recrystallises and it loses water."},
        {"topic": 1, "question_title": "Why is the sky blue?", "question_content": "",
         "best_answer": "Air scatters blue light most."},
        {"topic": 2, "question_title": "Why do cats purr?", "question_content": "",
         "best_answer": "To communicate and to soothe themselves."},
    ]
    dataset = tmp_path / "hostile.jsonl"
    dataset.write_text("".join(json.dumps(r, ensure_ascii=True) + "\n" for r in rows), encoding="utf-8")
    fake.script([openai_reply("Bread goes stale\u0000 as starch recrystallises."), openai_reply(LONG_ANSWER)])
    summary, db = run(fake, dataset, tmp_path)
    assert summary["questions"] == 3
    # the NUL answer and the plain echo are validated; the over-long one is cut, marked
    # truncated, and (one generation allowed) ends exhausted: a truncated answer is never validated
    assert (summary["validated"], summary["exhausted"], summary["failed"]) == (2, 1, 0)
    assert summary["truncated"] == 1
    assert summary["repaired_rows"] == 1  # the lone surrogate row
    assert statuses(db) == {"validated": 2, "exhausted": 1}
    with sqlite3.connect(db) as conn:
        answers = [a for (a,) in conn.execute("SELECT answer FROM results")]
        truncated = conn.execute("SELECT COUNT(*) FROM results WHERE truncated").fetchone()[0]
        titles = [t for (t,) in conn.execute("SELECT title FROM questions")]
    assert truncated == 1
    assert all("\x00" not in a for a in answers)
    assert sorted(len(a) for a in answers)[-1] == 50_000
    assert "Why does bread go stale \ufffd?" in titles
    assert "1 stored answers truncated" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_a_huge_csv_field_is_a_counted_skip_and_the_rest_is_answered(fake: FakeLlmServer, tmp_path: Path) -> None:
    dataset = tmp_path / "huge.csv"
    dataset.write_text(
        '"1","Why does bread go stale?","","Starch recrystallises."\n'
        f'"2","A huge question","{"x" * 140_000}","An answer."\n'
        '"3","Why is the sky blue?","","Air scatters blue light most."\n',
        encoding="utf-8",
    )
    summary, db = run(fake, dataset, tmp_path)
    assert summary["questions"] == 2
    assert summary["skipped_rows"] == {"too long": 1}
    assert sum(statuses(db).values()) == 2
