"""``qaflow run`` (the embedded runner) on a record whose handling raises, in-memory and on real Kafka.

The answer stage raises on one question (``tests/poison_hook`` injects the fault; the
over-long answer that used to do this is now truncated by the text policy). Before
per-record isolation the run died with the traceback; now that question ends ``failed`` and
the others are answered.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_embedded_run import qaflow
from tests.services.test_workers_poison import POISON_HOOK, stub_server

QUESTIONS = [
    ("Why is the sky blue?", "Sunlight scatters off air molecules, and blue light scatters the most."),
    ("Loop forever?", "No, a good answer ends."),
    ("Why is the sea salty?", "Rivers carry dissolved minerals to the sea, and evaporation leaves the salt."),
    ("Why does bread go stale?", "Its starch recrystallises and it loses water."),
]


def reply(path: str, body: Any) -> tuple[int, Any]:
    text = "Light scatters and the sea collects salt from rivers."
    return 200, {"id": "x", "object": "chat.completion", "model": "m",
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}}


@pytest.mark.parametrize("bus", ["memory", "kafka"])
def test_a_record_the_answer_stage_raises_on_fails_its_question_and_the_run_finishes(
    bus: str, tmp_path: Path, request: pytest.FixtureRequest, unique_name: str
) -> None:
    data = tmp_path / "q.csv"
    with data.open("w", newline="") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_ALL)
        for i, (title, ref) in enumerate(QUESTIONS, start=1):
            writer.writerow([str(i), title, "", ref])
    db = tmp_path / "q.db"
    server, url = stub_server(reply)
    env = {"QAFLOW_LLM_PROVIDER": "openai", "QAFLOW_LLM_BASE_URL": url, "QAFLOW_MAX_GENERATIONS": "1",
           "PYTHONPATH": POISON_HOOK, "POISON_MARK": "Loop forever"}
    args = ["run", "--json", "--dataset", str(data), "--scorer", "lexical", "--store", f"sqlite:///{db}"]
    if bus == "kafka":
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        args += ["--bus", f"kafka://{bootstrap}"]
        env["QAFLOW_TOPIC_PREFIX"] = f"{unique_name}."
    try:
        proc = qaflow(*args, env=env)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["questions"] == 4 and summary["failed"] == 1
    assert summary["validated"] + summary["exhausted"] == 3
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute(
            "SELECT q.title, r.status FROM results r JOIN questions q USING (question_id)"
        ).fetchall())
        (reason,) = conn.execute("SELECT error FROM results WHERE status = 'failed'").fetchone()
    assert rows["Loop forever?"] == "failed" and len(rows) == 4
    assert "llm stage" in reason and "injected handler fault" in reason
