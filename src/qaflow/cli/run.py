"""``qaflow run``: the whole job in one process, with a summary and an optional report."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from qaflow.cli.common import default_dataset, friendly_errors
from qaflow.cli.options import Option, click_options, env_hints, given_flags
from qaflow.core.settings import EmbeddedSettings, load
from qaflow.pipeline.summary import RunSummary

EXIT_ALL_FAILED = 1  # the run finished, but no question reached validated or exhausted

# Options that set a field of EmbeddedSettings: help, choices and bounds come from the field.
OPTIONS = (
    Option("--scorer", "scorer"),
    Option("--llm", "llm_provider"),
    Option("--threshold", "threshold"),
    Option("--max-generations", "max_generations"),
    Option("--store", "store_url"),
    Option("--bus", "bus_url"),
    Option("--cache", "cache_url"),
    Option("--seed", "llm_seed"),
    Option("--concurrency", "llm_concurrency"),
    Option("--run-id", "run_id", note="Empty: one is generated."),
)


@click.command("run")
@click.option(
    "--dataset",
    "dataset",
    type=click.Path(dir_okay=False),
    default=None,
    help="Data set to answer: Yahoo! Answers CSV (Zhang et al.) or the HF layout (CSV or JSONL). "
    "Default: the shipped sample, data/sample.csv.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "zhang", "hf-csv", "hf-jsonl"]),
    default="auto",
    show_default=True,
    help="Data-set format; auto detects it.",
)
@click.option("--limit", type=click.IntRange(min=0), default=None, help="Answer at most N questions.")
@click_options(EmbeddedSettings, OPTIONS)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a self-contained HTML report with plots (score histogram, threshold study, "
    "score by generation, calls spent).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object on stdout.")
@click.option("--no-server-check", "no_server_check", is_flag=True,
              help="Start without first checking that the LLM server (and a remote scorer) answers.")
@friendly_errors
def run(
    dataset: str | None,
    fmt: str,
    limit: int | None,
    report_path: str | None,
    as_json: bool,
    no_server_check: bool,
    **settings_options: Any,
) -> None:
    """Answer a data set end to end in one process: LLM answers, BERTScore against the
    reference, regeneration of poor answers, results persisted, and a summary of what the
    loop bought and cost. A second run over the same data answers from the store.

    Before the run, the LLM provider's URL (not the offline simulator's) and a remote
    scorer's are checked: one that does not answer stops the run at once.

    \b
    Exit codes:
      0  the run finished and at least one question was answered (validated or exhausted),
         or there was nothing to answer
      1  the run finished but every question failed (the summary lists the top reasons)
      2  the run could not start or stopped: a bad option or QAFLOW_* variable, an
         unreadable data set, a server that does not answer, a backend error"""
    from qaflow.datasets import open_dataset
    from qaflow.pipeline.embedded import EmbeddedPipeline

    ctx = click.get_current_context()
    hints = env_hints(EmbeddedSettings, OPTIONS, ctx.command, ctx.command_path)
    settings = load(EmbeddedSettings, hints=hints, flags=given_flags(settings_options, OPTIONS), **settings_options)
    if not no_server_check:
        from qaflow.cli.preflight import check_servers

        check_servers(settings)
    if settings.scorer == "bertscore":  # torch & co. import while the data set is read (time to first score)
        from qaflow.scoring.lightimport import import_in_background

        import_in_background()
    data = open_dataset(dataset or default_dataset(), limit=limit, fmt=fmt)
    err = Console(stderr=True)
    with Progress(
        TextColumn("[bold]answering"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=as_json,
        # Only on a terminal: elsewhere rich prints the bar once when it stops, a blank line with
        # --json and a stale bar above an error line.
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task("answering", total=limit)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total if total is not None else bar.tasks[0].total)

        pipeline = EmbeddedPipeline(settings, progress=progress)
        try:
            summary = pipeline.run(data, total=limit)
            bar.update(task, total=summary.questions, completed=summary.questions)
            summary.skipped_rows = dict(data.report.skipped) if hasattr(data.report, "skipped") else {}
            summary.repaired_rows = getattr(data.report, "repaired", 0)
            if report_path:
                from qaflow.report.html import write_report

                write_report(report_path, pipeline.store, summary, pipeline.question_ids)
        finally:
            pipeline.close()
    if as_json:
        click.echo(json.dumps(summary.to_dict(), sort_keys=True))
    else:
        print_summary(summary, Console(), store_url=settings.store_url)
        if report_path:
            click.echo(f"report: {report_path}")
    if summary.unique_questions and not summary.succeeded:
        top = f"; most common reason: {summary.failure_reasons[0][0]}" if summary.failure_reasons else ""
        stored = summary.answered_from.get("store", 0)
        again = (f"; {stored} came from the store, where an earlier run left them failed (a new --store tries "
                 "them again)") if stored else ""
        err.print(f"[bold red]no question was answered[/]: {summary.failed} of {summary.unique_questions} failed"
                  f"{top}{again} (details: {_trace_list(settings.store_url)})", markup=True, highlight=False,
                  soft_wrap=True)
        sys.exit(EXIT_ALL_FAILED)


def _trace_list(store_url: str) -> str:
    """The command that lists this store's questions; a URL that may hold a password is elided."""
    if store_url == EmbeddedSettings.model_fields["store_url"].default:
        return "qaflow trace --list"
    return f"qaflow trace --list --store {store_url if store_url.startswith('sqlite:') else '…'}"


def print_summary(s: RunSummary, console: Console, store_url: str | None = None) -> None:
    """The run's summary as a table; ``store_url`` (its password elided) is named as where the results are."""
    from rich.table import Table

    def pct(n: int) -> str:
        return f"{n}  ({100 * n / s.unique_questions:.0f}%)" if s.unique_questions else str(n)

    t = Table(title=f"qaflow run {s.run_id}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    rows: list[tuple[str, Any]] = [
        ("questions", f"{s.questions} ({s.unique_questions} unique)"),
        ("validated", pct(s.validated)),
        ("exhausted", pct(s.exhausted)),
        ("failed", pct(s.failed)),
        (
            "LLM calls",
            f"{s.llm_calls}  (first {s.first_calls}, regeneration {s.regeneration_calls}, retries {s.retry_calls})",
        ),
        ("mean score by generation", _by_generation(s)),
        ("quality", _quality(s)),
        ("cost", s.cost_text()),
        ("answered at once", _at_once(s)),
        ("dead letters", s.dead_letters),
        ("truncated answers", s.truncated),
        ("time", _time(s)),
        ("scorer", f"{s.scorer.get('name')} {s.scorer.get('model', '')}  threshold {s.threshold}"),
        ("LLM", f"{s.llm.get('provider')} {s.llm.get('model')}"),
    ]
    for i, (reason, n) in enumerate(s.failure_reasons):
        rows.append(("failure reasons" if i == 0 else "", f"{n}  {reason}"))
    if store_url:
        rows.append(("results in", store_url.split("@")[-1]))
    if s.skipped_rows:
        rows.append(("skipped rows", s.skipped_rows))
    if s.repaired_rows:
        rows.append(("repaired rows", f"{s.repaired_rows} (control characters, lone surrogates)"))
    for k, v in rows:
        t.add_row(k, str(v))
    console.print(t)


def _time(s: RunSummary) -> str:
    """Wall time, in milliseconds under a second (a run answered from the store takes a few), and the rate."""
    took = f"{s.elapsed_s:.1f} s" if s.elapsed_s >= 1 else f"{1000 * s.elapsed_s:.0f} ms"
    return f"{took}  ({s.questions_per_s:.1f} questions/s)" if s.questions_per_s else took


def _by_generation(s: RunSummary) -> str:
    """Mean score of each generation's answers; from g2 on, only the answers regenerated (those under the threshold)."""
    means = "  ".join(f"g{g}: {v:.3f}" for g, v in sorted(s.mean_score_by_generation.items()))
    if not means:
        return "-"
    return means + ("  (g2 on: only the regenerated answers)" if len(s.mean_score_by_generation) > 1 else "")


def _at_once(s: RunSummary) -> str:
    """Questions answered without the pipeline, by source (RunSummary.at_once_text)."""
    return f"{s.cache_hits}  ({s.at_once_text()})" if s.cache_hits else "0"


def _quality(s: RunSummary) -> str:
    if s.mean_first_score is None or s.mean_final_score is None:
        return "-"
    extra = f", {s.extra_calls / max(1, s.first_calls):.2f} extra calls per question" if s.first_calls else ""
    return (
        f"mean first answer {s.mean_first_score:.3f} -> final {s.mean_final_score:.3f} ({s.quality_gain:+.3f}{extra})"
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
