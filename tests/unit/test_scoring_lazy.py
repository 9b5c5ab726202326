"""The scorer model loads in the background when a run starts, overlapping the first LLM calls."""

from __future__ import annotations

import threading

import pytest

from qaflow.core.errors import ScoringError
from qaflow.scoring.lazy import LazyScorer
from qaflow.scoring.lexical import LexicalScorer

WAIT_S = 30.0


class SlowStart(LexicalScorer):
    """A lexical scorer whose start() blocks until released, recording the thread it ran on."""

    def __init__(self, fail: bool = False) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.starts: list[str] = []
        self.closed = 0
        self.fail = fail

    def start(self) -> None:
        self.starts.append(threading.current_thread().name)
        self.entered.set()
        assert self.release.wait(WAIT_S)
        if self.fail:
            msg = "model files missing"
            raise ScoringError(msg)

    def close(self) -> None:
        self.closed += 1


def test_preload_returns_at_once_and_loads_on_another_thread() -> None:
    inner = SlowStart()
    lazy = LazyScorer(inner, {"name": "lexical"})
    lazy.preload()
    assert inner.entered.wait(WAIT_S)
    assert inner.starts == ["scorer-preload"]
    assert not lazy.started and lazy.identity == {"name": "lexical"}
    inner.release.set()
    assert lazy.score(["a b"], ["a b"]) == [1.0]  # waits for the background load, does not load again
    assert inner.starts == ["scorer-preload"]
    lazy.preload()  # a second preload does nothing
    assert inner.starts == ["scorer-preload"]


def test_without_preload_the_first_score_loads() -> None:
    inner = SlowStart()
    inner.release.set()
    lazy = LazyScorer(inner, {})
    assert lazy.score(["a"], ["b"]) == [0.0]
    assert inner.starts == [threading.current_thread().name]


def test_failed_background_load_is_raised_by_the_first_score() -> None:
    inner = SlowStart(fail=True)
    inner.release.set()
    lazy = LazyScorer(inner, {})
    lazy.preload()
    assert lazy._loader is not None
    lazy._loader.join(WAIT_S)
    with pytest.raises(ScoringError, match="model files missing"):
        lazy.score(["a"], ["a"])
    assert len(inner.starts) == 2


def test_close_during_the_load_closes_the_model_once_loaded() -> None:
    inner = SlowStart()
    lazy = LazyScorer(inner, {})
    lazy.preload()
    assert inner.entered.wait(WAIT_S)
    lazy.close()  # returns while the model still loads
    assert inner.closed == 0
    inner.release.set()
    assert lazy._loader is not None
    lazy._loader.join(WAIT_S)
    assert inner.closed == 1


def test_load_and_first_score_lines_carry_process_cpu_the_bench_reads(caplog: pytest.LogCaptureFixture) -> None:
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "bench_scoring", Path(__file__).resolve().parents[2] / "bench" / "scoring.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    inner = SlowStart()
    inner.release.set()
    lazy = LazyScorer(inner, {"name": "lexical"})
    caplog.set_level("INFO", logger="qaflow.scoring.lazy")
    lazy.preload()
    assert lazy._loader is not None
    lazy._loader.join(WAIT_S)
    lazy.score(["a cat"], ["a cat"])
    lines = {key: [r.getMessage() for r in caplog.records if key in r.getMessage()]
             for key in ("scorer loaded in the background", "first scores out")}
    for key, found in lines.items():
        assert len(found) == 1, (key, caplog.text)
        cpu = bench._cpu_so_far(found[0])
        assert cpu is not None and cpu > 0, found[0]
