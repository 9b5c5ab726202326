"""Command-line options are generated from settings fields (qaflow.cli.options), for every command."""

from __future__ import annotations

import argparse

import click
import pytest
from pydantic_settings import BaseSettings

from qaflow.cli import options as opts
from qaflow.cli.run import OPTIONS as RUN_OPTIONS
from qaflow.cli.run import run
from qaflow.core import plugins
from qaflow.core.settings import EmbeddedSettings, ScoreJobSettings, TrafficGenSettings
from qaflow.flinkjob.args import OPTIONS as JOB_OPTIONS
from qaflow.flinkjob.args import parser as job_parser
from qaflow.services.traffic_gen.__main__ import OPTIONS as TRAFFIC_OPTIONS
from qaflow.services.traffic_gen.__main__ import parser as traffic_parser

COMMANDS: list[tuple[type[BaseSettings], list[opts.Option]]] = [
    (EmbeddedSettings, list(RUN_OPTIONS)),
    (ScoreJobSettings, list(JOB_OPTIONS)),
    (TrafficGenSettings, [opts.Option(flag, name) for flag, name in TRAFFIC_OPTIONS.items()]),
]


@pytest.mark.parametrize(("cls", "options"), COMMANDS)
def test_help_names_the_variable_and_the_fields_own_default(
    cls: type[BaseSettings], options: list[opts.Option]
) -> None:
    for option in options:
        text = opts.option_help(cls, option)
        info = cls.model_fields[option.field]
        assert info.description and info.description in text, option
        assert f"[env QAFLOW_{option.field.upper()}, default {opts.shown_default(cls, option.field)}]" in text


def test_choices_come_from_the_registry_or_the_literal() -> None:
    assert opts.choices(EmbeddedSettings, "llm_provider") == plugins.family("llm_provider").names()
    assert opts.choices(EmbeddedSettings, "scorer") == plugins.family("scorer").names()
    assert opts.choices(ScoreJobSettings, "flink_delivery_guarantee") == ("at-least-once", "exactly-once")
    assert opts.choices(EmbeddedSettings, "bus_url") is None  # a URL: free text, checked by its scheme
    assert opts.choices(EmbeddedSettings, "threshold") is None


def test_every_command_offers_the_registry_choices() -> None:
    names = set(plugins.family("scorer").names())
    run_params = {p.name: p for p in run.params}
    assert isinstance(run_params["scorer"].type, click.Choice) and set(run_params["scorer"].type.choices) == names
    for p in (job_parser(),):
        action = next(a for a in p._actions if a.dest == "scorer")
        assert set(action.choices or ()) == names
    distribution = next(a for a in traffic_parser()._actions if a.dest == "traffic_distribution")
    assert tuple(distribution.choices or ()) == ("poisson", "bursty", "uniform")


def test_click_types_carry_the_fields_bounds() -> None:
    params = {p.name: p for p in run.params}
    threshold = params["threshold"].type
    assert isinstance(threshold, click.FloatRange) and (threshold.min, threshold.max) == (0.0, 1.0)
    generations = params["max_generations"].type
    assert isinstance(generations, click.IntRange) and (generations.min, generations.max) == (1, 20)
    with pytest.raises(click.BadParameter):
        threshold.convert("1.5", None, None)


def test_argparse_values_reach_the_settings_as_overrides() -> None:
    p = argparse.ArgumentParser()
    options = [opts.Option("--rate", "traffic_rate"), opts.Option("--run-id", "run_id")]
    opts.add_arguments(p, TrafficGenSettings, options)
    assert opts.overrides(p.parse_args(["--rate", "2.5"]), options) == {"traffic_rate": "2.5", "run_id": None}


# Options whose parameter shares a settings field's name but that no QAFLOW_* variable sets.
NOT_THE_SETTING = {
    ("--log-level",): "the CLI's own log level; QAFLOW_LOG_LEVEL is the services'",
    ("fake-llm", "serve", "--api-key"): "the fake server's key, from FAKE_LLM_API_KEY (its own envvar)",
    ("dev", "up", "--scorer"): "the scorer dev up gives the score-worker it starts, not a setting of dev up",
}


def test_every_option_a_variable_also_sets_names_it_in_its_help() -> None:
    """`qaflow <command> --help`: an option that sets a settings field says which QAFLOW_* variable
    sets it too and its default; the text comes from the field (click_options), never retyped."""
    from qaflow.cli.main import cli
    from qaflow.core import settings as settings_mod

    fields = {name: info for cls in settings_mod._REGISTRY for name, info in cls.model_fields.items()}

    def walk(cmd: click.Command, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
        subs = cmd.commands.items() if isinstance(cmd, click.Group) else []
        return [(path, cmd), *(pair for name, sub in subs for pair in walk(sub, (*path, name)))]

    seen, wrong = set(), []
    for path, cmd in walk(cli):
        for param in cmd.params:
            if not isinstance(param, click.Option) or param.name not in fields:
                continue
            key = (*path, param.opts[0])
            seen.add(key)
            if key in NOT_THE_SETTING:
                continue
            derived = settings_mod.field_help(param.name, fields[param.name])  # the field's own words
            if derived not in (param.help or "") or f"[env QAFLOW_{param.name.upper()}, default " not in param.help:
                wrong.append(" ".join(key))
    assert not wrong, f"options that a QAFLOW_* variable sets but whose help does not say so: {wrong}"
    assert seen >= {("run", "--llm"), ("run", "--store"), ("trace", "--store")}
    assert set(NOT_THE_SETTING) <= seen, "an entry of NOT_THE_SETTING no longer exists"


def test_run_help_shows_the_variables() -> None:
    from click.testing import CliRunner

    out = " ".join(CliRunner().invoke(run, ["--help"]).output.split())
    for variable in ("QAFLOW_LLM_PROVIDER", "QAFLOW_SCORER", "QAFLOW_STORE_URL", "QAFLOW_THRESHOLD"):
        assert f"[env {variable}, default" in out


@pytest.mark.parametrize(
    ("variable", "said"),
    [
        ("QAFLOW_LIMIT", "QAFLOW_LIMIT (no such variable; use the option: `qaflow run --limit <value>`)"),
        ("QAFLOW_DATASET", "QAFLOW_DATASET (no such variable; use the option: `qaflow run --dataset <value>`)"),
        ("QAFLOW_REPORT", "QAFLOW_REPORT (no such variable; use the option: `qaflow run --report <value>`)"),
        ("QAFLOW_JSON", "QAFLOW_JSON (no such variable; use the option: `qaflow run --json`)"),
        ("QAFLOW_LLM", "QAFLOW_LLM (did you mean QAFLOW_LLM_PROVIDER (the variable of --llm)?)"),
        ("QAFLOW_STORE", "QAFLOW_STORE (did you mean QAFLOW_STORE_URL (the variable of --store)?)"),
        ("QAFLOW_SCORRER", "QAFLOW_SCORRER (did you mean QAFLOW_SCORER?)"),  # a typo: difflib's guess
    ],
)
def test_run_says_which_option_a_variable_named_after_it_means(variable: str, said: str) -> None:
    """`QAFLOW_LIMIT=3 qaflow run` used to answer "did you mean QAFLOW_HELM?"."""
    from click.testing import CliRunner

    from qaflow.cli.main import cli

    result = CliRunner().invoke(cli, ["run", "--no-server-check"], env={variable: "3"}, prog_name="qaflow")
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert "unknown variable(s): " in out and said in out


def test_env_hints_leave_out_the_variables_the_settings_read() -> None:
    hints = opts.env_hints(EmbeddedSettings, RUN_OPTIONS, run, "qaflow run")
    assert "QAFLOW_SCORER" not in hints and "QAFLOW_THRESHOLD" not in hints  # --scorer, --threshold: real variables
    assert "QAFLOW_RUN_ID" not in hints  # --run-id's field is run_id: its variable has the flag's name
    assert {"QAFLOW_LIMIT", "QAFLOW_FORMAT", "QAFLOW_NO_SERVER_CHECK", "QAFLOW_SEED"} <= set(hints)
