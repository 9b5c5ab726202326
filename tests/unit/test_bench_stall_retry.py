"""bench/pipeline.py runs a stalled `qaflow run` once more and says so; other failures still fail."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_pipeline() -> Any:
    sys.path.insert(0, str(ROOT))
    try:
        return importlib.import_module("bench.pipeline")
    finally:
        sys.path.remove(str(ROOT))


def test_a_stalled_run_is_run_once_more_and_marked(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = load_pipeline()
    stall = "RuntimeError: pipeline made no progress with 40 question(s) unfinished"
    outcomes: list[Any] = [RuntimeError(f"qaflow run failed (1): ...\n{stall}\n"), {"questions_per_s": 10.0}]

    def once(*_: Any) -> dict[str, Any]:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return dict(outcome)

    monkeypatch.setattr(pipeline, "_run_real_once", once)
    result = pipeline.run_real(None, Path("d.csv"), argparse.Namespace(), None)
    assert result["retried_after"] == stall
    assert not outcomes


def test_a_run_that_fails_otherwise_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = load_pipeline()
    calls = []

    def once(*_: Any) -> dict[str, Any]:
        calls.append(1)
        raise RuntimeError("qaflow run failed (2): bad option")

    monkeypatch.setattr(pipeline, "_run_real_once", once)
    with pytest.raises(RuntimeError, match="bad option"):
        pipeline.run_real(None, Path("d.csv"), argparse.Namespace(), None)
    assert calls == [1]
