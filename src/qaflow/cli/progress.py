"""Progress of long, multi-step commands (``qaflow dev up``), shown as ``qaflow run`` shows its own:
a rich bar on stderr with steps done of all, elapsed time, and the last step's name."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

Step = Callable[[str], None]  # called once per finished step, with what finished ("kafka ready")


@contextmanager
def steps(label: str, total: int, *, console: Console | None = None, transient: bool = False) -> Iterator[Step]:
    """A bar of ``total`` steps; the yielded function marks one done (safe from any thread)."""
    with Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console or Console(stderr=True),
                  transient=transient) as bar:
        task = bar.add_task("", total=total)

        def step(what: str) -> None:
            bar.update(task, advance=1, description=what)

        yield step
        bar.update(task, completed=total)
