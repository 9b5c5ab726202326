"""Plugin registries (qaflow.core.plugins): one line per plugin, read by settings, help, docs and factories."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from qaflow.cli.config import markdown
from qaflow.core import plugins
from qaflow.core.errors import ConfigError
from qaflow.core.settings import (
    ApiSettings,
    EmbeddedSettings,
    LlmSettings,
    ScorerServiceSettings,
    StorageWriterSettings,
    TrafficGenSettings,
    load,
)

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.parametrize("field", sorted(plugins.HOMES))
def test_registries_are_pure_data(field: str) -> None:
    """The core reads these modules, so they import nothing but the core (and no I/O library)."""
    path = SRC / (plugins.HOMES[field].replace(".", "/") + ".py")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            assert node.module in ("__future__", "qaflow.core.plugins"), (path.name, node.module)
        assert not isinstance(node, ast.Import), path.name
    fam = plugins.family(field)
    assert fam.field == field and len(set(fam.names())) == len(fam.plugins) >= 2


@pytest.mark.parametrize("field", ["llm_provider", "scorer"])
def test_each_named_plugin_class_carries_its_registry_name(field: str) -> None:
    for plugin in plugins.family(field).plugins:
        module, _, attr = plugin.target.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        assert cls.name == plugin.name, plugin  # the name it reports (logs, stored identity) is its registry name


def test_provider_defaults_come_from_the_registry() -> None:
    fam = plugins.family("llm_provider")
    for plugin in fam.plugins:
        env = {"llm_provider": plugin.name, "llm_api_key": "k"}
        s = LlmSettings.model_validate(env)
        assert (s.model, s.base_url) == (plugin.default_model, plugin.default_url.rstrip("/"))
    assert load(EmbeddedSettings, {}).llm_provider == fam.default == "offline"
    assert load(EmbeddedSettings, {}).scorer == plugins.family("scorer").default == "bertscore"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QAFLOW_LLM_PROVIDER": "claude"},
         f"QAFLOW_LLM_PROVIDER: Input should be {plugins.family('llm_provider').choices()} (got 'claude')"),
        ({"QAFLOW_SCORER": "rouge"}, "QAFLOW_SCORER: Input should be 'bertscore', 'lexical' or 'remote'"),
        ({"QAFLOW_LLM_PROVIDER": "gemini"}, "QAFLOW_LLM_API_KEY is required when QAFLOW_LLM_PROVIDER=gemini"),
        ({"QAFLOW_SCORER": "remote"}, "QAFLOW_SCORER_URL is required when QAFLOW_SCORER=remote"),
    ],
)
def test_plugin_choices_and_needs_fail_fast(env: dict[str, str], message: str) -> None:
    assert plugins.family("llm_provider").names()[:4] == ("offline", "gemini", "ollama", "openai")
    with pytest.raises(ConfigError) as err:
        load(EmbeddedSettings, env)
    assert message in str(err.value)


def test_url_families_name_the_variable_and_the_forms() -> None:
    from qaflow.bus import open_bus
    from qaflow.cache import open_cache
    from qaflow.store import open_store

    for opener, variable in ((open_bus, "QAFLOW_BUS_URL"), (open_store, "QAFLOW_STORE_URL"),
                             (open_cache, "QAFLOW_CACHE_URL")):
        with pytest.raises(ConfigError, match=f"{variable}: unsupported scheme 'ftp'"):
            opener("ftp://x")
    assert type(open_cache("rediss://h:1/0")).__name__ == "RedisCache"  # an alias
    assert type(open_store("postgres://u@h/db")).__name__ == "PostgresStore"


def test_a_url_of_no_plugin_stops_at_load_naming_the_option_given_and_never_echoing_the_url() -> None:
    """Checked with the settings, so a run stops before it starts; the option the user typed is
    named (not a variable they never set), and the URL, which may hold a password, is not shown."""
    url = "ftp://user:hunter2@db/qaflow"
    with pytest.raises(ConfigError) as err:
        load(EmbeddedSettings, {}, flags={"store_url": "--store"}, store_url=url)
    assert str(err.value) == "--store: unsupported scheme 'ftp' (use sqlite:///path or postgresql://user:pass@host/db)"
    with pytest.raises(ConfigError) as err:
        load(EmbeddedSettings, {"QAFLOW_CACHE_URL": url})
    assert str(err.value).startswith("QAFLOW_CACHE_URL: unsupported scheme 'ftp'") and "hunter2" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        load(EmbeddedSettings, {"QAFLOW_STORE_URL": "hunter2"})  # a secret in the wrong place
    assert str(err.value).startswith("QAFLOW_STORE_URL: not a URL (use ") and "hunter2" not in str(err.value)
    assert load(EmbeddedSettings, {"QAFLOW_CACHE_URL": "rediss://h:1/0"}).cache_url == "rediss://h:1/0"  # an alias


def test_docs_and_help_list_every_plugin() -> None:
    doc = markdown()
    for field in plugins.HOMES:
        for plugin in plugins.family(field).plugins:
            assert (plugin.name if not plugins.family(field).by_scheme else plugin.summary) in doc


# -- settings per service -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "variable"),
    [
        (ApiSettings, "QAFLOW_THRESHOLD"),  # the api only wanted run_id from the pipeline group
        (ApiSettings, "QAFLOW_SCORER"),
        (TrafficGenSettings, "QAFLOW_MAX_GENERATIONS"),
        (TrafficGenSettings, "QAFLOW_BUS_URL"),
        (StorageWriterSettings, "QAFLOW_LLM_PROVIDER"),
        (ScorerServiceSettings, "QAFLOW_STORE_URL"),
        (EmbeddedSettings, "QAFLOW_HTTP_PORT"),
    ],
)
def test_a_service_refuses_variables_only_other_services_read(cls: type, variable: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(cls, {variable: "1"})
    assert f"unknown variable(s): {variable} (only other services read it" in str(err.value)


def test_the_did_you_mean_hint_uses_the_services_own_variables() -> None:
    with pytest.raises(ConfigError) as err:
        load(ApiSettings, {"QAFLOW_API_KYE": "x"})
    assert "QAFLOW_API_KYE (did you mean QAFLOW_API_KEY?)" in str(err.value)
    assert load(TrafficGenSettings, {"QAFLOW_RUN_ID": "r1", "QAFLOW_CACHE_DIR": "/tmp"}).run_id == "r1"
