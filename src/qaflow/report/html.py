"""A self-contained HTML report of a run: figures as inline PNGs, no external files."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from qaflow.core.cost import format_usd
from qaflow.core.errors import MissingExtraError
from qaflow.pipeline.summary import RunSummary
from qaflow.report.study import ThresholdPoint, by_question, study
from qaflow.store.base import Store


def _figure_png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def figures(summary: RunSummary, scores: dict[str, list[float]], points: list[ThresholdPoint]) -> dict[str, str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingExtraError("matplotlib", "report") from exc
    out: dict[str, str] = {}
    t = summary.threshold
    bins = [i / 40 for i in range(41)]

    fig, ax = plt.subplots(figsize=(7, 3.6))
    first = [s[0] for s in scores.values()]
    best = [max(s) for s in scores.values()]
    ax.hist(first, bins=bins, alpha=0.6, label="first answer")
    ax.hist(best, bins=bins, alpha=0.6, label="best answer (stored)")
    ax.axvline(t, color="black", linestyle="--", label=f"threshold {t:g}")
    ax.set(xlabel="score", ylabel="questions", title="Score distribution")
    ax.legend()
    out["histogram"] = _figure_png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.6))
    xs = [p.threshold for p in points]
    ax.plot(xs, [p.first_pass_rate for p in points], label="pass rate, first answer")
    # The study gives a point both replay figures or neither.
    replay = [(p.threshold, p.final_pass_rate, p.calls_per_question) for p in points
              if p.final_pass_rate is not None and p.calls_per_question is not None]
    ax.plot([x for x, _, _ in replay], [rate for _, rate, _ in replay], label="pass rate after regeneration")
    ax.axvline(t, color="black", linestyle="--", label=f"run threshold {t:g}")
    ax.set(xlabel="threshold", ylabel="share of questions", ylim=(0, 1.02), title="Threshold study")
    if replay:
        ax2 = ax.twinx()
        ax2.plot(
            [x for x, _, _ in replay],
            [calls for _, _, calls in replay],
            color="tab:red",
            alpha=0.7,
            label="LLM answers per question",
        )
        ax2.set_ylabel("LLM answers per question", color="tab:red")
        ax2.set_ylim(0.9, max(1.1, summary.max_generations + 0.1))
    handles = [h for a in fig.axes for h in a.get_legend_handles_labels()[0]]
    ax.legend(handles=handles, loc="lower left", fontsize=8)
    out["threshold"] = _figure_png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.2))
    gens = sorted(summary.mean_score_by_generation)
    ax.bar([str(g) for g in gens], [summary.mean_score_by_generation[g] for g in gens], color="tab:green")
    ax.axhline(t, color="black", linestyle="--")
    ax.set(xlabel="generation", ylabel="mean score", title="Mean score by generation")
    out["generations"] = _figure_png(fig)
    plt.close(fig)

    labels = ["first", "regeneration", "retry"]
    if summary.llm_calls:  # a run answered from the store made none: the text says so (render)
        fig, ax = plt.subplots(figsize=(5, 3.2))
        values = [summary.first_calls, summary.regeneration_calls, summary.retry_calls]
        ax.bar(labels, values, color=["tab:blue", "tab:orange", "tab:gray"])
        ax.set(ylabel="LLM calls", title=f"Calls spent ({summary.llm_calls} in all)")
        out["calls"] = _figure_png(fig)
        plt.close(fig)

    if summary.cost is not None:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        usd = [summary.cost_by_kind.get(k, 0.0) for k in labels]
        ax.bar(labels, usd, color=["tab:blue", "tab:orange", "tab:gray"])
        ax.set(ylabel="USD", title=f"Cost: first answers vs regeneration and retries ({format_usd(summary.cost)})")
        out["cost"] = _figure_png(fig)
        plt.close(fig)

    priced = [(p.threshold, p.cost_per_question, p.quality_gain) for p in points
              if p.cost_per_question is not None and p.quality_gain is not None]
    if priced:
        fig, ax = plt.subplots(figsize=(7, 3.6))
        ax.plot([c for _, c, _ in priced], [g for _, _, g in priced], marker=".")
        for threshold, cost, gain in priced[::10]:
            ax.annotate(f"{threshold:.1f}", (cost, gain), fontsize=7)
        ax.set(xlabel="USD per question", ylabel="mean score gained over the first answer",
               title="Quality gained against money spent (labels: threshold)")
        out["quality_vs_cost"] = _figure_png(fig)
        plt.close(fig)
    return out


def render(summary: RunSummary, figs: dict[str, str], points: list[ThresholdPoint]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_value(v))}</td></tr>"
        for k, v in summary.to_dict().items()
    )
    study_rows = "".join(
        f"<tr><td>{p.threshold:.2f}</td><td>{p.first_pass_rate:.1%}</td>"
        f"<td>{'' if p.final_pass_rate is None else f'{p.final_pass_rate:.1%}'}</td>"
        f"<td>{'' if p.calls_per_question is None else f'{p.calls_per_question:.2f}'}</td>"
        f"<td>{'' if p.quality_gain is None else f'{p.quality_gain:+.3f}'}</td>"
        f"<td>{'' if p.cost_per_question is None else format_usd(p.cost_per_question)}</td></tr>"
        for p in points[::5]
    )
    imgs = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{data}"></figure>' for name, data in figs.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>qaflow report {html.escape(summary.run_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }}
figure {{ display: inline-block; margin: 0.5rem; }} img {{ max-width: 520px; }}
table {{ border-collapse: collapse; margin: 1rem 0; }} th, td {{ padding: 2px 10px; border-bottom: 1px solid #ddd;
text-align: left; font-size: 0.9rem; }}
</style></head><body>
<h1>qaflow run <code>{html.escape(summary.run_id)}</code></h1>
<p>{summary.unique_questions} questions: {summary.validated} validated, {summary.exhausted} exhausted,
{summary.failed} failed; {summary.truncated} stored answers truncated.
{summary.llm_calls} LLM calls ({summary.regeneration_calls} for regeneration,
{summary.retry_calls} retries, counted from the call ledger). Mean score {_fmt(summary.mean_first_score)}
for first answers, {_fmt(summary.mean_final_score)} for stored answers.</p>{_answered_at_once(summary)}
<p id="cost">Cost: {html.escape(summary.cost_text())}.</p>
{imgs}
<h2>Threshold study</h2>
<p>Replayed from the recorded attempts. Pass rates after regeneration and the answers needed are exact for
thresholds up to the run's ({summary.threshold:g}); above it only first answers are known.</p>
<table><tr><th>threshold</th><th>first answer passes</th><th>passes after regeneration</th>
<th>LLM answers per question</th><th>quality gained</th><th>cost per question</th></tr>{study_rows}</table>
<h2>Summary</h2><table>{rows}</table>
</body></html>
"""


def _answered_at_once(summary: RunSummary) -> str:
    """A paragraph on the questions answered at once, from the cache, the store or an earlier row
    of the data set (RunSummary.at_once_text); empty when there were none."""
    if not summary.cache_hits:
        return ""
    return (f'\n<p id="at-once">{summary.cache_hits} of {summary.unique_questions} questions were answered at '
            f"once, with no LLM call ({html.escape(summary.at_once_text())}).</p>")


def _value(v: Any) -> str:
    return json.dumps(v) if isinstance(v, dict) else str(v)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def write_report(path: str | Path, store: Store, summary: RunSummary, question_ids: list[str]) -> Path:
    scores = by_question(store.attempt_scores(question_ids=question_ids))
    grid = [i / 100 for i in range(101)]
    costs = store.generation_costs(question_ids=question_ids)
    points = study(scores, summary.threshold, summary.max_generations, grid, costs)
    figs = figures(summary, scores, points) if scores else {}
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(summary, figs, points), encoding="utf-8")
    return target
