"""scripts/chaos_report.py: the chaos table goes between the markers of docs/reliability.md, the rest stays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scripts.chaos_report import BEGIN, END, render_table, update

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
ROW = {"scenario": "kafka-stop-10s", "questions": 60, "accepted": 60, "terminal": 2, "lost": 58, "duplicated": 0,
       "drain_s": None, "post_p99_ms": 5012.3, "alive": "8/9 (storage-writer dead)", "all_alive": False,
       "restarted_by_hand": ["storage-writer"], "notes": ["kafka down 10 s"], "passed": False}


def test_table_shows_failures_and_every_figure() -> None:
    table = render_table([ROW, {**ROW, "scenario": "ok", "lost": 0, "passed": True, "restarted_by_hand": []}])
    lines = table.splitlines()
    assert len(lines) == 4
    expected = "| kafka-stop-10s | 60 | 2 | 58 | 0 | - | 5012 | 8/9 (storage-writer dead) | storage-writer | **FAIL** |"
    assert expected in lines[2]
    assert "| pass |" in lines[3]


def test_update_replaces_only_the_generated_block(tmp_path: Path) -> None:
    report = tmp_path / "chaos.json"
    report.write_text(json.dumps({"commit": "abc1234+dirty", "rows": [ROW]}))
    doc = tmp_path / "doc.md"
    doc.write_text(f"# title\nkept\n{BEGIN}\nold table\n{END}\nafter\n")
    update(report, doc)
    text = doc.read_text()
    assert text.startswith("# title\nkept\n") and text.endswith(f"{END}\nafter\n")
    assert "old table" not in text and "kafka-stop-10s" in text and "0 passed" in text
    assert "on commit abc1234+dirty " in text  # the commit the suite ran on, not the one rendering


def test_update_refuses_a_document_without_markers(tmp_path: Path) -> None:
    report = tmp_path / "chaos.json"
    report.write_text(json.dumps({"rows": [ROW]}))
    doc = tmp_path / "doc.md"
    doc.write_text("# no markers\n")
    with pytest.raises(SystemExit, match="markers"):
        update(report, doc)


def test_the_reliability_doc_has_the_markers() -> None:
    text = DOC.read_text()
    assert text.index(BEGIN) < text.index(END)
