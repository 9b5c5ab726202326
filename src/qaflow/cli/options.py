"""Command-line options generated from settings fields: one helper for click and argparse.

An :class:`Option` maps a flag to a settings field; everything else is read off the field:
- help: its description (a plugin field's lists its registry's plugins, see
  :func:`qaflow.core.settings.field_help`), then ``[env QAFLOW_<FIELD>, default <value>]``;
- choices: a ``Literal`` annotation, or the plugin registry of the field;
- click types: int/float with the field's bounds (``ge``/``le``/``gt``/``lt``).

Parsed values go to :func:`qaflow.core.settings.load` as overrides, so the precedence is
option, then variable, then default, and a bad value's error names the variable. argparse
options take strings and leave the checking to the settings. Used by ``qaflow run``, the
Flink job's arguments and traffic-gen.
"""

from __future__ import annotations

import argparse
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import annotated_types
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from qaflow.core import plugins
from qaflow.core.settings import PREFIX, field_help

if TYPE_CHECKING:
    import click

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Option:
    """``flag`` sets settings field ``field``; ``note`` adds what only the command line needs to say."""

    flag: str
    field: str
    note: str = ""
    metavar: str = ""


def _info(cls: type[BaseSettings], field: str) -> FieldInfo:
    return cls.model_fields[field]


def choices(cls: type[BaseSettings], field: str) -> tuple[str, ...] | None:
    """The allowed values of ``field``: its Literal's, or its plugin registry's names; None when free."""
    if plugins.is_plugin_field(field) and not plugins.family(field).by_scheme:
        return plugins.family(field).names()
    annotation = _info(cls, field).annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is Literal:
        return tuple(str(a) for a in typing.get_args(annotation))
    literals = [a for a in args if typing.get_origin(a) is Literal]
    if len(literals) == 1:
        return tuple(str(a) for a in typing.get_args(literals[0]))
    return None


def shown_default(cls: type[BaseSettings], field: str) -> str:
    value = _info(cls, field).get_default(call_default_factory=True)
    return "empty" if value is None or value == "" else str(value)


def option_help(cls: type[BaseSettings], option: Option) -> str:
    text = " ".join(t for t in (field_help(option.field, _info(cls, option.field)), option.note) if t)
    return f"{text} [env {PREFIX}{option.field.upper()}, default {shown_default(cls, option.field)}]"


def _click_type(cls: type[BaseSettings], field: str) -> Any:
    import click  # only click commands pay for it (the Flink job's arguments use argparse)

    allowed = choices(cls, field)
    if allowed is not None:
        return click.Choice(allowed)
    info = _info(cls, field)
    base = next((t for t in (int, float) if info.annotation is t or t in typing.get_args(info.annotation)), None)
    if base is None:
        return None
    bounds: dict[str, Any] = {}
    for m in info.metadata:
        if isinstance(m, annotated_types.Ge):
            bounds["min"] = m.ge
        elif isinstance(m, annotated_types.Gt):
            bounds.update(min=m.gt, min_open=True)
        elif isinstance(m, annotated_types.Le):
            bounds["max"] = m.le
        elif isinstance(m, annotated_types.Lt):
            bounds.update(max=m.lt, max_open=True)
    if base is int:
        return click.IntRange(bounds.get("min"), bounds.get("max")) if bounds else click.INT
    return click.FloatRange(**bounds) if bounds else click.FLOAT


def click_options(cls: type[BaseSettings], options: Sequence[Option]) -> Callable[[F], F]:
    """Decorator adding one click option per :class:`Option`; each passes its value as keyword ``field``."""

    import click

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = click.option(option.flag, option.field, type=_click_type(cls, option.field), default=None,
                                   metavar=option.metavar or None, help=option_help(cls, option))(command)
        return command

    return decorate


def add_arguments(parser: argparse.ArgumentParser, cls: type[BaseSettings], options: Iterable[Option]) -> None:
    """One argparse option per :class:`Option`, stored under the field's name (a string, or None)."""
    for option in options:
        allowed = choices(cls, option.field)
        metavar = None if allowed else option.metavar or option.flag.removeprefix("--").upper().replace("-", "_")
        parser.add_argument(option.flag, dest=option.field, default=None, choices=allowed, metavar=metavar,
                            help=option_help(cls, option))


def overrides(values: Mapping[str, Any] | argparse.Namespace, options: Iterable[Option]) -> dict[str, Any]:
    """The parsed values of ``options``, keyed by field, for :func:`qaflow.core.settings.load`."""
    get = values.get if isinstance(values, Mapping) else lambda name: getattr(values, name, None)
    return {option.field: get(option.field) for option in options}


def given_flags(values: Mapping[str, Any] | argparse.Namespace, options: Iterable[Option]) -> dict[str, str]:
    """Field -> flag of the ``options`` given a value, for :func:`qaflow.core.settings.load`'s
    ``flags``: an error in ``--store foo://x`` then names ``--store``, not ``QAFLOW_STORE_URL``."""
    given = overrides(values, options)
    return {option.field: option.flag for option in options if given[option.field] is not None}


def env_hints(
    cls: type[BaseSettings], options: Iterable[Option], command: click.Command, command_path: str
) -> dict[str, str]:
    """What to say about a ``QAFLOW_<FLAG>`` variable named after an option of a click ``command``
    that ``cls`` does not read, for :func:`qaflow.core.settings.load` (``hints``).

    - an :class:`Option` whose field's variable has another name: that variable
      (``QAFLOW_LLM`` -> did you mean ``QAFLOW_LLM_PROVIDER`` (the variable of ``--llm``)?);
    - any other option (``--limit``, ``--json``): it has no variable, use the option
      (``command_path`` is how it is run, e.g. ``qaflow run``).
    Shape: upper-case variable name -> text; names ``cls`` reads are left out.
    """
    import click

    own = {PREFIX + name.upper() for name in cls.model_fields}
    mirrored = {option.flag: PREFIX + option.field.upper() for option in options}
    hints: dict[str, str] = {}
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        for flag in (f for f in param.opts if f.startswith("--")):
            name = PREFIX + flag.removeprefix("--").upper().replace("-", "_")
            if name in own:
                continue
            if flag in mirrored:
                hints[name] = f"did you mean {mirrored[flag]} (the variable of {flag})?"
            else:
                usage = flag if param.is_flag else f"{flag} <value>"
                hints[name] = f"no such variable; use the option: `{command_path} {usage}`"
    return hints
