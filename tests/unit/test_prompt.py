from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qaflow.core.errors import ConfigError
from qaflow.llm.prompt import render_prompt, validate_template


def test_built_in_english_prompt_has_title_and_details() -> None:
    prompt = render_prompt("How do magnets work?", "I mean fridge magnets.", "en")
    assert "Question: How do magnets work?" in prompt
    assert "Details: I mean fridge magnets." in prompt
    assert "few sentences" in prompt


def test_built_in_prompt_leaves_out_empty_details() -> None:
    prompt = render_prompt("How do magnets work?", "   ", "en")
    assert "Details" not in prompt
    assert prompt.rstrip().endswith("How do magnets work?")


def test_built_in_spanish_prompt() -> None:
    prompt = render_prompt("¿Cómo funcionan los imanes?", "De nevera.", "es")
    assert "Pregunta: ¿Cómo funcionan los imanes?" in prompt
    assert "Detalles: De nevera." in prompt
    assert "español" in prompt


def test_custom_template_gets_all_placeholders() -> None:
    template = "Answer in {language}: {title} -- {content}"
    assert render_prompt("Why?", "Because.", "es", template) == "Answer in Spanish: Why? -- Because."


def test_empty_template_means_built_in() -> None:
    assert render_prompt("Why?", "", "en", "") == render_prompt("Why?", "", "en")


@pytest.mark.parametrize(
    "template",
    ["{title} {question}", "{title} {}", "{title} {0}", "{title.upper}", "{title!z}", "{title", "no title"],
)
def test_bad_template_names_the_variable(template: str) -> None:
    with pytest.raises(ConfigError, match="QAFLOW_LLM_PROMPT_TEMPLATE"):
        validate_template(template)
    with pytest.raises(ConfigError, match="QAFLOW_LLM_PROMPT_TEMPLATE"):
        render_prompt("t", "c", "en", template)


def test_literal_braces_are_allowed() -> None:
    validate_template('Reply as JSON {{"answer": ...}} to: {title}')
    assert render_prompt("Why?", "", "en", '{{"q": "{title}"}}') == '{"q": "Why?"}'


def test_unknown_language_names_its_variable() -> None:
    with pytest.raises(ConfigError, match="QAFLOW_LLM_LANGUAGE"):
        render_prompt("t", "", "fr")


@given(st.text(), st.text(), st.sampled_from(["en", "es"]))
def test_any_text_renders_verbatim(title: str, content: str, language: str) -> None:
    prompt = render_prompt(title, content, language, "{title}|{content}|{language}")
    assert prompt.startswith(title.strip() + "|" + content.strip() + "|")
