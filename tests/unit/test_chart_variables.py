"""The chart's per-service variable lists are generated from the settings classes, not copied."""

from pathlib import Path

from qaflow.cli.config import CHART_VARIABLES, chart_variables
from qaflow.core.settings import services

ROOT = Path(__file__).resolve().parents[2]


def test_chart_variables_are_generated_from_the_settings() -> None:
    assert (ROOT / CHART_VARIABLES).read_text() == chart_variables(), (
        f"run: qaflow config chart-variables > {CHART_VARIABLES}")


def test_every_chart_component_has_a_settings_class() -> None:
    components = {p.name for p in (ROOT / "charts/qaflow/charts").iterdir() if p.is_dir()} - {"common"}
    assert components <= set(services()), components - set(services())
