"""bert-score imported without pandas and matplotlib (time to first score, issue 13), still whole."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("bert_score")
pytestmark = pytest.mark.bertscore

CHECK = textwrap.dedent(
    """
    import sys
    from qaflow.scoring.lightimport import import_bert_score

    bert_score = import_bert_score()
    assert "bert_score.scorer" in sys.modules
    skipped = [m for m in ("pandas", "matplotlib", "matplotlib.pyplot", "mpl_toolkits.axes_grid1") if m in sys.modules]
    assert not skipped, skipped
    from bert_score import scorer

    # bert-score's own names still reach the real modules when used
    assert scorer.pd.read_csv.__module__.startswith("pandas")
    import pandas
    assert pandas.DataFrame({"a": [1, 2]}).shape == (2, 1)
    import matplotlib
    matplotlib.use("Agg")
    figure, axes = scorer.plt.subplots()
    assert type(figure).__name__ == "Figure"
    assert type(scorer.make_axes_locatable(axes)).__name__ == "AxesDivider"
    print("ok")
    """
)


def test_bert_score_imports_without_pandas_and_matplotlib_and_they_still_work() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"
