import pytest

from qaflow.core.errors import ConfigError
from qaflow.core.settings import EmbeddedSettings, known_variables, load


def test_defaults_load_from_an_empty_environment() -> None:
    s = load(EmbeddedSettings, {})
    assert s.threshold == pytest.approx(0.8) and s.llm_provider == "offline" and s.bus_url == "memory://"
    assert s.model == "qaflow-offline-simulator"


def test_environment_values_are_typed() -> None:
    s = load(EmbeddedSettings, {"QAFLOW_THRESHOLD": "0.5", "QAFLOW_MAX_GENERATIONS": "2", "QAFLOW_LLM_LANGUAGE": "es"})
    assert (s.threshold, s.max_generations, s.llm_language) == (0.5, 2, "es")


def test_settings_are_frozen() -> None:
    s = load(EmbeddedSettings, {})
    with pytest.raises(ValueError, match="frozen"):
        s.threshold = 0.1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QAFLOW_THRESHOLD": "1.5"}, "QAFLOW_THRESHOLD: Input should be less than or equal to 1 (got '1.5')"),
        ({"QAFLOW_MAX_GENERATIONS": "zero"}, "QAFLOW_MAX_GENERATIONS: Input should be a valid integer"),
        ({"QAFLOW_TRESHOLD": "0.5"}, "unknown variable(s): QAFLOW_TRESHOLD (did you mean QAFLOW_THRESHOLD?)"),
        ({"QAFLOW_LLM_PROVIDER": "gemini"}, "QAFLOW_LLM_API_KEY is required"),
        ({"QAFLOW_LLM_PROVIDER": "claude"}, "QAFLOW_LLM_PROVIDER: Input should be"),
        ({"QAFLOW_SCORER": "remote"}, "QAFLOW_SCORER_URL is required"),
        ({"QAFLOW_RETRY_OVERLOAD_BASE_S": "10", "QAFLOW_RETRY_OVERLOAD_CAP_S": "1"}, "QAFLOW_RETRY_OVERLOAD_CAP_S"),
        ({"QAFLOW_LLM_SIM_RATE_429": "0.7", "QAFLOW_LLM_SIM_RATE_503": "0.7"}, "add up to at most 1"),
        ({"QAFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "QAFLOW_KAFKA_USERNAME and QAFLOW_KAFKA_PASSWORD are"),
        ({"QAFLOW_KAFKA_SASL_MECHANISM": "GSSAPI"}, "QAFLOW_KAFKA_SASL_MECHANISM: Input should be"),
    ],
)
def test_bad_configuration_fails_fast_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(EmbeddedSettings, env)
    assert message in str(err.value)


@pytest.mark.parametrize(("name", "hint"), [("QAFLOW_SCORRER", "QAFLOW_SCORER"), ("QAFLOW_SEED", "QAFLOW_LLM_SEED"),
                                           ("QAFLOW_BUS", "QAFLOW_BUS_URL"), ("QAFLOW_HELM_PATH", "QAFLOW_HELM")])
def test_a_genuinely_close_name_is_suggested(name: str, hint: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(EmbeddedSettings, {name: "1"})
    assert f"unknown variable(s): {name} (did you mean {hint}?)" == str(err.value)


@pytest.mark.parametrize("name", ["QAFLOW_LIMIT", "QAFLOW_DATASET", "QAFLOW_JSON", "QAFLOW_REPORT"])
def test_a_name_close_only_by_the_prefix_gets_no_suggestion(name: str) -> None:
    """The shared QAFLOW_ prefix alone made QAFLOW_LIMIT "close" to QAFLOW_HELM and QAFLOW_DATASET to QAFLOW_SCORER."""
    with pytest.raises(ConfigError) as err:
        load(EmbeddedSettings, {name: "1"})
    assert str(err.value) == f"unknown variable(s): {name}"


def test_the_callers_hints_replace_the_guess() -> None:
    with pytest.raises(ConfigError) as err:
        load(EmbeddedSettings, {"QAFLOW_LIMIT": "3", "QAFLOW_TRESHOLD": "1"}, hints={"QAFLOW_LIMIT": "use --limit"})
    assert str(err.value) == ("unknown variable(s): QAFLOW_LIMIT (use --limit), "
                              "QAFLOW_TRESHOLD (did you mean QAFLOW_THRESHOLD?)")


def test_secrets_are_never_echoed() -> None:
    with pytest.raises(ConfigError) as err:
        load(EmbeddedSettings, {"QAFLOW_LLM_API_KEY": ["sekrit"], "QAFLOW_KAFKA_PASSWORD": ["hunter2"]})  # type: ignore[dict-item]
    assert "QAFLOW_LLM_API_KEY" in str(err.value) and "QAFLOW_KAFKA_PASSWORD" in str(err.value)
    assert "sekrit" not in str(err.value) and "hunter2" not in str(err.value)


def test_overrides_win_and_none_means_unset() -> None:
    s = load(EmbeddedSettings, {"QAFLOW_THRESHOLD": "0.5"}, threshold=0.7, scorer=None)
    assert s.threshold == 0.7 and s.scorer == "bertscore"


def test_known_variables_cover_every_field() -> None:
    names = known_variables()
    assert {"QAFLOW_THRESHOLD", "QAFLOW_BUS_URL", "QAFLOW_LLM_API_KEY", "QAFLOW_SCORER_MODEL"} <= names


def test_tooling_variables_are_known_but_not_settings() -> None:
    s = load(EmbeddedSettings, {"QAFLOW_CACHE_DIR": "/tmp/c", "QAFLOW_REQUIRE_SERVERS": "1"})
    assert s.threshold == pytest.approx(0.8)
    assert {"QAFLOW_CACHE_DIR", "QAFLOW_REQUIRE_SERVERS"} <= known_variables()
