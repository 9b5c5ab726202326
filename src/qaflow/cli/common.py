"""Shared CLI plumbing: logging, friendly errors, the default data set."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from qaflow.core.errors import QaflowError

F = TypeVar("F", bound=Callable[..., Any])


class QaflowCliError(click.ClickException):
    """One of qaflow's own errors on the command line: its message on one line, exit code 2
    (click's code for a usage error, so 1 stays free for "ran, but the outcome is bad")."""

    exit_code = 2


def friendly_errors(func: F) -> F:
    """Turn qaflow's own errors into one clear line and exit code 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except QaflowError as exc:
            raise QaflowCliError(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def repo_root() -> Path | None:
    """The source checkout this package runs from, if any (editable installs, images)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "data" / "sample.csv").is_file():
            return parent
    return None


def default_dataset() -> str:
    local = Path("data/sample.csv")
    if local.is_file():
        return str(local)
    root = repo_root()
    return str(root / "data" / "sample.csv") if root else str(local)
