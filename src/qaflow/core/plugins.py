"""Plugin families: which LLM providers, scorers, buses, stores and caches exist, and their facts.

Each family is declared once, in its own package, as a :class:`Family` of :class:`Plugin`
lines (``qaflow/llm/registry.py``, ``qaflow/scoring/registry.py``, ``qaflow/bus/registry.py``,
``qaflow/store/registry.py``, ``qaflow/cache/registry.py``): name, the class to import when
chosen, a few words for help texts, and what it needs (default model and URL, settings that
must be set, the pip extra). Those modules are pure data (they import nothing but this
module), so the core reads them to validate settings and to write help texts and docs, while
the shells use :meth:`Family.load` to import the chosen class lazily. The pattern is faust's
drivers registry (``faust/transport/drivers/__init__.py``): names map to import paths, and a
missing optional dependency fails with the extra to install.

Adding a plugin = one new module for its code plus one :class:`Plugin` line in its family.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import import_module
from typing import Any

from qaflow.core.errors import ConfigError, MissingExtraError

PREFIX = "QAFLOW_"

# settings field -> the module whose FAMILY declares its plugins (read lazily: no import cycle).
HOMES: dict[str, str] = {
    "llm_provider": "qaflow.llm.registry",
    "scorer": "qaflow.scoring.registry",
    "bus_url": "qaflow.bus.registry",
    "store_url": "qaflow.store.registry",
    "cache_url": "qaflow.cache.registry",
}


@dataclass(frozen=True, slots=True)
class Plugin:
    """One plugin of a family, as its registry line declares it."""

    name: str  # the setting's value (a provider or scorer name), or the URL scheme
    target: str  # "package.module:Class", imported only when the plugin is chosen
    summary: str  # a few words for help texts and docs; for URL families, the URL form
    default_model: str = ""  # LLM providers: the model used when QAFLOW_LLM_MODEL is empty
    default_url: str = ""  # LLM providers: the base URL used when QAFLOW_LLM_BASE_URL is empty
    start_hint: str = ""  # what to do when its URL does not answer (said by qaflow run's reachability check)
    requires: tuple[str, ...] = ()  # settings fields that must be set when this plugin is chosen
    remote: bool = False  # calls a service over the network (its timeout must fit a poll interval)
    extra: str = ""  # pip extra providing its dependencies ("" = always installed)
    dependency: str = ""  # the distribution named when the extra is missing
    aliases: tuple[str, ...] = ()  # other names (URL schemes) for the same plugin


@dataclass(frozen=True, slots=True)
class Family:
    """The plugins one setting chooses between; the first one is the default."""

    field: str  # the settings field, e.g. "llm_provider"
    plugins: tuple[Plugin, ...]
    by_scheme: bool = False  # the field holds a URL and its scheme picks the plugin

    @property
    def variable(self) -> str:
        return PREFIX + self.field.upper()

    @property
    def default(self) -> str:
        return self.plugins[0].name

    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.plugins)

    def choices(self) -> str:
        """``'a', 'b' or 'c'``: the allowed names, in pydantic's wording for a Literal."""
        return _either([repr(n) for n in self.names()])

    def describe(self) -> str:
        """The allowed values with their summaries, for help texts and docs."""
        if self.by_scheme:
            return _either([p.summary for p in self.plugins])
        return _either([f"{p.name} ({p.summary})" for p in self.plugins])

    def find(self, value: str) -> Plugin | None:
        key = value.split("://", 1)[0] if self.by_scheme else value
        return next((p for p in self.plugins if key == p.name or key in p.aliases), None)

    def refusal(self, value: str) -> str:
        """Why ``value`` names no plugin. A URL family shows only the scheme, never the URL (it
        may hold a password), nor a value without one (a secret put in the wrong place)."""
        if not self.by_scheme:
            return f"unknown {value!r}; use one of {', '.join(self.names())}"
        if "://" not in value:
            return f"not a URL (use {self.describe()})"
        return f"unsupported scheme {value.split('://', 1)[0]!r} (use {self.describe()})"

    def get(self, value: str) -> Plugin:
        """The plugin ``value`` names, or :class:`ConfigError` naming the variable and the choices."""
        plugin = self.find(value)
        if plugin is not None:
            return plugin
        msg = f"{self.variable}: {self.refusal(value)}"
        raise ConfigError(msg)

    def load(self, value: str) -> Any:
        """Import and return the class of the plugin ``value`` names (lazily: only the chosen one)."""
        plugin = self.get(value)
        module, _, attr = plugin.target.partition(":")
        try:
            return getattr(import_module(module), attr)
        except ImportError as exc:
            if not plugin.extra:
                raise
            raise MissingExtraError(plugin.dependency or plugin.extra, plugin.extra) from exc


def _either(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


@cache
def family(field: str) -> Family:
    """The family the settings field ``field`` chooses from (its registry module, imported once)."""
    found: Family = import_module(HOMES[field]).FAMILY
    return found


def is_plugin_field(field: str) -> bool:
    return field in HOMES
