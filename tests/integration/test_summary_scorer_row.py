"""The run summary names the scorer the same way on a first run and on a second one answered from the
store, where the model never loads (`make run` twice said `bertscore sentence-transformers/...`, then
`bertscore default`)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from qaflow.cli.run import print_summary
from qaflow.core.question import Question
from qaflow.core.settings import EmbeddedSettings
from qaflow.pipeline.embedded import EmbeddedPipeline
from qaflow.pipeline.summary import RunSummary
from tests.integration.test_embedded_run import SAMPLE
from tests.unit.test_scoring_lazy import SlowStart


def scorer_row(summary: RunSummary) -> str:
    out = io.StringIO()
    print_summary(summary, Console(file=out, width=200, color_system=None))
    return next(" ".join(line.split()) for line in out.getvalue().splitlines() if "│ scorer " in line)


def test_the_scorer_row_is_the_same_when_every_answer_comes_from_the_store(tmp_path: Path) -> None:
    """The second run's scorer never loads (its start blocks until the run is over), so its row comes
    from what the scorer says before loading; the first run's from its loaded identity."""
    settings = EmbeddedSettings(scorer="lexical", threshold=0.35, store_url=f"sqlite:///{tmp_path / 'q.db'}",
                                bus_url="memory://", cache_url="memory://")
    questions = [Question(title=f"q{i}", content="", reference_answer=f"answer number {i}") for i in range(4)]
    rows, loaded = [], []
    for release in (True, False):
        inner = SlowStart()
        if release:
            inner.release.set()
        pipeline = EmbeddedPipeline(settings, scorer=inner)  # type: ignore[arg-type]
        try:
            summary = pipeline.run(questions)
            loaded.append(pipeline.scorer.started)
        finally:
            inner.release.set()
            pipeline.close()
        rows.append(scorer_row(summary))
    assert loaded == [True, False]  # the second run answered from the store without the scorer
    assert rows[0] == rows[1] == "│ scorer │ lexical threshold 0.35 │"


@pytest.mark.bertscore
def test_make_run_twice_names_the_real_scorer_the_same_way(tmp_path: Path) -> None:
    """`qaflow run` twice on one store, as `make run` does, with the real BERTScore scorer."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QAFLOW_")}
    args = [sys.executable, "-m", "qaflow.cli.main", "run", "--dataset", str(SAMPLE), "--limit", "3",
            "--store", f"sqlite:///{tmp_path / 'q.db'}"]
    rows = []
    for _ in range(2):
        proc = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False,
                              env={**clean, "COLUMNS": "200"})
        assert proc.returncode == 0, proc.stderr
        rows.append(next(" ".join(line.split()) for line in proc.stdout.splitlines() if "│ scorer " in line))
    assert "answered at once │ 3" in " ".join(proc.stdout.split())  # the second run came from the store
    assert rows[0] == rows[1] == "│ scorer │ bertscore sentence-transformers/all-MiniLM-L6-v2 threshold 0.8 │"
