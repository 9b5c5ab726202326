"""scripts/bench_report.py: `make bench`'s table into docs/performance.md, between its markers."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_report_puts_the_table_into_the_docs() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import bench_report
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    doc = "# Performance\n\ntext\n"
    once = bench_report.splice(doc, "| a |\n|---|\n| 1 |\n")
    assert once.startswith(doc.rstrip("\n")) and bench_report.HEADING in once and "| 1 |" in once
    twice = bench_report.splice(once + "\n## After\n", "| a |\n|---|\n| 2 |\n")
    assert "| 1 |" not in twice and "| 2 |" in twice and twice.endswith("## After\n")
    assert twice.count(bench_report.HEADING) == 1
