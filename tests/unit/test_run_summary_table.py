"""`qaflow run`'s summary table: where the results are, what came from the store, what g2+ means."""

from __future__ import annotations

import io

from rich.console import Console

from qaflow.cli.run import print_summary
from qaflow.pipeline.summary import RunSummary


def rows(summary: RunSummary, **kwargs: str) -> dict[str, str]:
    out = io.StringIO()
    print_summary(summary, Console(file=out, width=240, color_system=None), **kwargs)
    table = {}
    for line in out.getvalue().splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 2 and cells[0]:
            table[cells[0]] = cells[1]
    return table


def test_answers_from_the_store_are_counted_by_source_and_said_to_keep_their_earlier_scoring() -> None:
    s = RunSummary(run_id="r", threshold=0.95, max_generations=3, questions=5, cache_hits=5,
                   answered_from={"store": 4, "duplicate": 1})
    got = rows(s, store_url="postgresql://user:secret@db:5432/qaflow")
    assert got["answered at once"] == "5  (1 repeated in the data set, 4 from the store; as an earlier run scored them)"
    assert got["results in"] == "db:5432/qaflow"  # no user, no password
    assert "{" not in got["answered at once"]


def test_a_run_that_answered_everything_itself_says_zero_and_names_no_store_unless_given() -> None:
    s = RunSummary(run_id="r", threshold=0.8, max_generations=3, mean_score_by_generation={1: 0.7})
    got = rows(s)
    assert got["answered at once"] == "0" and "results in" not in got
    assert got["mean score by generation"] == "g1: 0.700"


def test_later_generations_are_said_to_average_only_the_regenerated_answers() -> None:
    s = RunSummary(run_id="r", threshold=0.8, max_generations=3, mean_score_by_generation={2: 0.74, 1: 0.68})
    assert rows(s)["mean score by generation"] == "g1: 0.680  g2: 0.740  (g2 on: only the regenerated answers)"


def test_a_run_shorter_than_a_second_gives_milliseconds_not_zero_seconds() -> None:
    quick = RunSummary(run_id="r", questions=210, elapsed_s=0.042, questions_per_s=5000.0)
    assert rows(quick)["time"] == "42 ms  (5000.0 questions/s)"
    long = RunSummary(run_id="r", questions=210, elapsed_s=12.34, questions_per_s=17.0)
    assert rows(long)["time"] == "12.3 s  (17.0 questions/s)"
    assert rows(RunSummary(run_id="r"))["time"] == "0 ms"
