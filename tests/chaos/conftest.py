"""The chaos suite's one stack, shared by every scenario, and its report.

Every row goes to ``reports/chaos.json`` (and the table to ``reports/chaos.md``) as soon as
its scenario ends; ``make chaos`` then copies the table into docs/reliability.md with
``scripts/chaos_report.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qaflow.devstack import DevStack

from .harness import ChaosStack, Row

REPORT = Path(__file__).resolve().parents[2] / "reports" / "chaos.json"


@pytest.fixture(scope="session")
def chaos_stack(
    tmp_path_factory: pytest.TempPathFactory, require_servers: Callable[[Any], None]
) -> Iterator[ChaosStack]:
    root = tmp_path_factory.mktemp("chaos")
    require_servers(DevStack(root / "stack"))
    stack = ChaosStack(root)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="session")
def chaos_rows() -> Iterator[list[Row]]:
    """Rows of this run, written out after each scenario (a partial run still leaves a report)."""
    rows: list[Row] = []
    yield rows


def _commit() -> str:
    """The commit under test, with ``+dirty`` when the work tree differs from it."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False, cwd=REPORT.parents[1]).stdout

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no").strip() else "")


def save_rows(rows: list[Row]) -> None:
    from scripts.chaos_report import render_table

    REPORT.parent.mkdir(exist_ok=True)
    data = [r.to_dict() for r in rows]
    REPORT.write_text(json.dumps({"commit": _commit(), "rows": data}, indent=2) + "\n")
    REPORT.with_suffix(".md").write_text(render_table(data))
