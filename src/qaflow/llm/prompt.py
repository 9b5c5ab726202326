"""The prompt sent to the LLM: built-in templates for ``en`` and ``es``, or a custom one.

A custom template (``QAFLOW_LLM_PROMPT_TEMPLATE``) may use ``{title}``, ``{content}`` and
``{language}`` (the language's name, e.g. "English"); anything else is a configuration
error, found at start-up by :func:`validate_template` rather than on the first question.
"""

from __future__ import annotations

import logging
import string

from qaflow.core.errors import ConfigError

logger = logging.getLogger(__name__)

VARIABLE = "QAFLOW_LLM_PROMPT_TEMPLATE"
PLACEHOLDERS = frozenset({"title", "content", "language"})
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "es": "Spanish"}

# (instructions, details label); the details line is left out when a question has none.
_BUILT_IN: dict[str, tuple[str, str]] = {
    "en": (
        "You are a helpful assistant. Answer the user's question below in English, "
        "concisely and helpfully, in a few sentences. Answer directly, without "
        "repeating the question.\n\nQuestion: {title}",
        "Details: {content}",
    ),
    "es": (
        "Eres un asistente útil. Responde en español a la pregunta del usuario, de forma "
        "concisa y útil, en pocas frases. Responde directamente, sin repetir la "
        "pregunta.\n\nPregunta: {title}",
        "Detalles: {content}",
    ),
}


def validate_template(template: str | None) -> None:
    """Raise :class:`ConfigError` naming the variable if ``template`` cannot be rendered."""
    if template is None or template == "":
        return
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:  # unbalanced braces
        msg = f"{VARIABLE}: not a valid template ({exc}); use {{{{ and }}}} for literal braces"
        raise ConfigError(msg) from exc
    unknown = sorted({name or "{}" for name in fields} - PLACEHOLDERS)
    if unknown:
        msg = (
            f"{VARIABLE}: unknown placeholder(s) {', '.join(unknown)}; "
            f"allowed are {{title}}, {{content}}, {{language}}"
        )
        raise ConfigError(msg)
    if "title" not in fields:
        msg = f"{VARIABLE}: the template must contain {{title}}"
        raise ConfigError(msg)
    try:  # conversions and format specs only fail when formatting
        template.format(title="t", content="c", language="English")
    except (ValueError, IndexError, KeyError, AttributeError) as exc:
        msg = f"{VARIABLE}: cannot render the template ({exc})"
        raise ConfigError(msg) from exc


def _check_language(language: str) -> None:
    if language not in LANGUAGE_NAMES:
        msg = f"QAFLOW_LLM_LANGUAGE: unsupported language {language!r}; use one of {sorted(LANGUAGE_NAMES)}"
        raise ConfigError(msg)


def render_prompt(title: str, content: str, language: str = "en", template: str | None = None) -> str:
    """The prompt for one question. ``template=None`` (or empty) uses the built-in one."""
    _check_language(language)
    title, content = title.strip(), content.strip()
    if template:
        validate_template(template)
        return template.format(title=title, content=content, language=LANGUAGE_NAMES[language])
    instructions, details = _BUILT_IN[language]
    prompt = instructions.format(title=title)
    if content:
        prompt += "\n" + details.format(content=content)
    return prompt
