"""``qaflow dataset``: inspect a data-set file, or write a synthetic one."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from qaflow.core.errors import DatasetError
from qaflow.core.question import CATEGORIES
from qaflow.datasets import FORMATS, LoadReport, open_dataset
from qaflow.datasets.synth import synth_questions, write_zhang, write_zhang_csv

logger = logging.getLogger(__name__)


class DatasetFileError(click.ClickException):
    """A malformed data-set file: one line, ``file:line: reason``, exit code 2."""

    exit_code = 2


@click.group(help="Inspect question data sets, or generate synthetic ones for load tests.")
def dataset() -> None:
    pass


@dataset.command(help="Write N synthetic questions in the Zhang (Yahoo! Answers) CSV format.")
@click.option("--n", "n", type=click.IntRange(min=0), required=True, help="Number of questions to write.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed; the same seed gives the same file.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (gzip if it ends in .gz). Default: standard output.",
)
def synth(n: int, seed: int, out: Path | None) -> None:
    questions = synth_questions(n, seed=seed)
    if out is None or str(out) == "-":
        write_zhang(questions, sys.stdout)
        return
    count = write_zhang_csv(questions, out)
    click.echo(f"wrote {count} questions to {out}", err=True)


@dataset.command(help="Read a data-set file and report rows, questions, skips and categories.")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    help="Stop after this many questions. Default: read the whole file.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="File layout; auto looks at the extension and the first row.",
)
def inspect(path: Path, limit: int | None, fmt: str) -> None:
    try:
        data = open_dataset(path, limit=limit, fmt=fmt)
        for _question in data:
            pass
    except DatasetError as exc:
        raise DatasetFileError(str(exc)) from exc
    _print_report(data.report)


def _print_report(report: LoadReport) -> None:
    console = Console()
    summary = Table(title=f"{report.path} ({report.fmt})", show_header=False)
    summary.add_column("what")
    summary.add_column("count", justify="right")
    summary.add_row("rows read", str(report.rows))
    summary.add_row("questions", str(report.questions))
    summary.add_row("skipped", str(report.skipped_total))
    for reason, count in sorted(report.skipped.items()):
        summary.add_row(f"  {reason}", str(count))
    summary.add_row("repaired (control characters, lone surrogates)", str(report.repaired))
    if not report.complete:
        summary.add_row("stopped early", "limit reached")
    console.print(summary)

    categories = Table(title="questions per category")
    categories.add_column("#", justify="right")
    categories.add_column("category")
    categories.add_column("questions", justify="right")
    for number, name in CATEGORIES.items():
        categories.add_row(str(number), name, str(report.categories.get(number, 0)))
    console.print(categories)
