"""``qaflow trace <id>``: one question's timeline, read from any store."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from qaflow.cli.common import friendly_errors
from qaflow.core.errors import ConfigError
from qaflow.core.settings import BackendSettings, load


def _detail(e: dict[str, Any]) -> str:
    step = e["step"]
    if step == "call":
        tokens = "" if e.get("prompt_tokens") is None else f"  tokens {e['prompt_tokens']}+{e['completion_tokens']}"
        cost = "" if e.get("cost_usd") is None else f"  ${e['cost_usd']:.6f}"
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
    title = f"question {trace['question_id']}: {trace['status']}" + ("" if cost is None else f"  (${cost:.6f})")
    t = Table(title=title, title_justify="left")
    t.add_column("t (s)", justify="right")
    t.add_column("step", style="bold")
    t.add_column("detail")
    for e in trace["events"]:
        t.add_row("" if e.get("t_s") is None else f"{e['t_s']:.3f}", e["step"], _detail(e))
    console.print(t)


@click.command("trace")
@click.argument("question_id")
@click.option("--store", "store_url", default=None,
              help="sqlite:///path or postgresql://... [env QAFLOW_STORE_URL, default sqlite:///qaflow.db]")
@click.option("--json", "as_json", is_flag=True, help="Print the trace as one JSON object.")
@friendly_errors
def trace(question_id: str, store_url: str | None, as_json: bool) -> None:
    """Show one question's timeline: submitted, each LLM call with its outcome and latency,
    each retry wait, each score and the terminal decision, with times (s since submission)."""
    from qaflow.store import open_store

    s = load(BackendSettings, store_url=store_url)
    qid = question_id.strip().lower()
    store = open_store(s.store_url)
    store.start()
    try:
        got = store.trace(qid)
    finally:
        store.close()
    if got is None:
        msg = f"no question with id {qid} in {s.store_url.split('@')[-1]}"
        raise ConfigError(msg)
    if as_json:
        click.echo(json.dumps(got, sort_keys=True))
    else:
        print_trace(got, Console(width=160))
