"""The ``qaflow`` command."""

from __future__ import annotations

import click

from qaflow import __version__
from qaflow.cli.common import setup_logging
from qaflow.cli.run import run


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="qaflow")
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help="Log verbosity (logs go to stderr).",
)
def cli(log_level: str) -> None:
    """qaflow: answer questions with LLMs, score every answer with BERTScore against a
    reference, and regenerate only what quality needs.

    Start with `qaflow run` (everything in one process, no servers). An option that mirrors
    a setting can also be set with its QAFLOW_* environment variable, named in the option's
    help; see docs/configuration.md."""
    setup_logging(log_level)


cli.add_command(run)


def _register_optional() -> None:
    """Subcommands whose modules may be missing in a partial install are added if present."""
    import importlib

    for module, attr, name in [
        ("qaflow.cli.config", "config", "config"),
        ("qaflow.cli.dataset", "dataset", "dataset"),
        ("qaflow.cli.fake_llm", "fake_llm", "fake-llm"),
        ("qaflow.cli.dev", "dev", "dev"),
        ("qaflow.cli.flink", "flink", "flink"),
        ("qaflow.cli.cluster", "cluster", "cluster"),
        ("qaflow.cli.serve", "serve", "serve"),
        ("qaflow.cli.report", "report", "report"),
        ("qaflow.cli.trace", "trace", "trace"),
    ]:
        try:
            cmd = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        cli.add_command(cmd, name)


_register_optional()


def main() -> None:
    cli(prog_name="qaflow")


if __name__ == "__main__":  # pragma: no cover
    main()
