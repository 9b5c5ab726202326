"""``qaflow trace [ID]``: one question's timeline, or (without an id) the recent questions to
pick one from, read from any store."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from qaflow.cli.common import friendly_errors
from qaflow.cli.options import Option, click_options, given_flags
from qaflow.core.cost import format_usd
from qaflow.core.errors import ConfigError
from qaflow.core.settings import BackendSettings, load

if TYPE_CHECKING:
    from qaflow.store.listing import QuestionRow

OPTIONS = (Option("--store", "store_url"),)
DEFAULT_LIMIT = 20


def _detail(e: dict[str, Any]) -> str:
    step = e["step"]
    if step == "call":
        tokens = "" if e.get("prompt_tokens") is None else f"  tokens {e['prompt_tokens']}+{e['completion_tokens']}"
        cost = "" if e.get("cost_usd") is None else f"  {format_usd(e['cost_usd'])}"
        error = f"  {e['error']}" if e.get("error") else ""
        return (f"g{e['generation']} d{e['delivery']}  {e['outcome']}  {e['latency_ms']:.0f} ms  "
                f"{e['provider']}/{e['model']}{tokens}{cost}{error}")
    if step == "retry_wait":
        return f"g{e['generation']} d{e['delivery']}  wait {e['wait_s']:.3f} s"
    if step == "score":
        return f"g{e['generation']}  score {e['score']:.4f}  -> {e['decision']}"
    if step == "dead_letter":
        return f"{e['stage']}: {e['reason']}"
    if step == "terminal":
        score = "" if e.get("score") is None else f"  score {e['score']:.4f} (g{e['best_generation']})"
        error = f"  {e['error']}" if e.get("error") else ""
        return f"{e['status']}{score}{error}"
    return ""


def print_trace(trace: dict[str, Any], console: Console) -> None:
    cost = trace.get("cost_usd")
    title = f"question {trace['question_id']}: {trace['status']}" + ("" if cost is None else f"  ({format_usd(cost)})")
    t = Table(title=title, title_justify="left")
    t.add_column("t (s)", justify="right")
    t.add_column("step", style="bold")
    t.add_column("detail")
    for e in trace["events"]:
        t.add_row("" if e.get("t_s") is None else f"{e['t_s']:.3f}", e["step"], _detail(e))
    console.print(t)


def print_list(rows: list[QuestionRow], where: str, console: Console, run_id: str | None = None) -> None:
    if not rows and run_id:
        console.print(f"no questions of run {run_id} in {where} (a run lists the questions it sent to the pipeline; "
                      "one answered wholly from the store or the cache has none; qaflow trace --list shows the "
                      "recent ones)", highlight=False)
        return
    if not rows:
        console.print(f"no questions in {where} (qaflow run writes to sqlite:///qaflow.db in the directory it runs in; "
                      "--store or QAFLOW_STORE_URL reads another store)", highlight=False)
        return
    t = Table(title=f"{len(rows)} most recent questions in {where}, newest first", title_justify="left")
    t.add_column("question id", no_wrap=True)
    t.add_column("status", style="bold")
    t.add_column("score", justify="right")
    t.add_column("answers", justify="right")
    t.add_column("LLM calls", justify="right")
    t.add_column("submitted (UTC)", no_wrap=True)
    t.add_column("run")
    for r in rows:
        t.add_row(r.question_id, r.status, "" if r.score is None else f"{r.score:.4f}", str(r.answers), str(r.calls),
                  time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.submitted_at)), r.run_id or "")
    console.print(t)
    console.print(f"details of one: qaflow trace {rows[0].question_id}", highlight=False)


@click.command("trace")
@click.argument("question_id", required=False)
@click_options(BackendSettings, OPTIONS)
@click.option("--list", "as_list", is_flag=True,
              help="List the most recent questions (id, status, score, answers scored, LLM calls), newest first; "
                   "the default without QUESTION_ID.")
@click.option("--limit", type=click.IntRange(min=1), default=DEFAULT_LIMIT, show_default=True,
              help="With --list: how many questions.")
@click.option("--run-id", "of_run", default=None, help="With --list: only the questions of this run.")
@click.option("--json", "as_json", is_flag=True, help="Print the trace (or the list) as JSON.")
@friendly_errors
def trace(question_id: str | None, store_url: str | None, as_list: bool, limit: int, of_run: str | None,
          as_json: bool) -> None:
    """Show a question's timeline, or list the recent questions.

    With QUESTION_ID: submitted, each LLM call with its outcome and latency, each retry wait,
    each score and the terminal decision, with times (s since submission). Without it (or
    with --list): the most recent questions in the store."""
    from qaflow.store import open_store

    if question_id and as_list:
        msg = "give a QUESTION_ID or --list, not both"
        raise click.UsageError(msg)
    s = load(BackendSettings, flags=given_flags({"store_url": store_url}, OPTIONS), store_url=store_url)
    where = s.store_url.split("@")[-1]  # no user or password in messages
    store = open_store(s.store_url)
    store.start()
    try:
        if not question_id:
            rows = store.recent_questions(limit, run_id=of_run)
        else:
            qid = question_id.strip().lower()
            got = store.trace(qid)
    finally:
        store.close()
    if not question_id:
        if as_json:
            click.echo(json.dumps([asdict(r) for r in rows], sort_keys=True))
        else:
            print_list(rows, where, Console(width=160), run_id=of_run)
        return
    if got is None:
        msg = f"no question with id {qid} in {where} (qaflow trace --list shows the recent ones)"
        raise ConfigError(msg)
    if as_json:
        click.echo(json.dumps(got, sort_keys=True))
    else:
        print_trace(got, Console(width=160))
