from pathlib import Path

from qaflow.cli.config import markdown
from qaflow.core import settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_doc_is_generated_from_the_settings() -> None:
    assert DOC.read_text() == markdown(), "run: qaflow config docs > docs/configuration.md"


def test_every_variable_is_described() -> None:
    undocumented = [
        f"{cls.__name__}.{name}"
        for cls in settings._REGISTRY
        for name, info in cls.model_fields.items()
        if not info.description
    ]
    assert not undocumented
