"""The text policy every entrance applies: data sets, LLM replies and records read from the bus.

Text that a backend or JSON cannot carry is repaired, never passed on to crash a later stage:

- lone UTF-16 surrogates (U+D800-U+DFFF) are replaced by U+FFFD, the Unicode replacement
  character: they cannot be encoded as UTF-8 (Unicode 15, section 3.9, D92), so
  ``str.encode("utf-8")`` raises and neither Kafka, PostgreSQL nor SQLite can hold them;
- C0 control characters other than tab, line feed and carriage return, and DEL, are
  removed, or replaced by a space when Python counts them as whitespace (U+000B, U+000C,
  U+001C-U+001F), so words stay apart. PostgreSQL's ``text`` refuses NUL ("A string
  literal cannot contain NUL (0x00) characters") and ``jsonb`` refuses ``\\u0000``
  (PostgreSQL 16 docs, section 8.14); the others are invisible noise in an answer;
- text over a limit is cut at the limit and marked truncated (only where the caller asks:
  an LLM answer is truncated, a data-set row over the limit is skipped instead).

:func:`repair` returns the text and what was changed, so the change can be recorded.
The API keeps refusing such input with a 422 (its caller can fix it); see
``qaflow.services.api.validation``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# The same control characters as bytes: a fast test (encode + bytes.translate run in C, about
# ten times faster than a regex search over str), so clean text costs little on every decode.
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


@dataclass(frozen=True, slots=True)
class Repaired:
    """``text`` after the policy; ``changes`` names each kind of change ("removed 2 control
    characters", "replaced 1 lone surrogate", "truncated 63700 to 50000 characters")."""

    text: str
    changes: tuple[str, ...] = ()
    truncated: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def _control(match: re.Match[str]) -> str:
    return " " if match.group().isspace() else ""


def needs_repair(text: str) -> bool:
    """True if ``text`` holds a lone surrogate or a control character the policy removes."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        return True  # a lone surrogate
    return len(data.translate(None, _CONTROL_BYTES)) != len(data)


def clean(text: str) -> str:
    """``text`` with lone surrogates replaced and control characters removed (no limit)."""
    if not needs_repair(text):
        return text
    return _CONTROL.sub(_control, _SURROGATE.sub(REPLACEMENT, text))


def repair(text: str, max_chars: int | None = None) -> Repaired:
    """Apply the policy to ``text``; cut it to ``max_chars`` (characters) when given."""
    changes: list[str] = []
    if needs_repair(text):
        text, surrogates = _SURROGATE.subn(REPLACEMENT, text)
        text, controls = _CONTROL.subn(_control, text)
        if surrogates:
            changes.append(f"replaced {surrogates} lone surrogate{'s' * (surrogates != 1)}")
        if controls:
            changes.append(f"removed {controls} control character{'s' * (controls != 1)}")
    truncated = max_chars is not None and len(text) > max_chars
    if truncated:
        assert max_chars is not None
        changes.append(f"truncated {len(text)} to {max_chars} characters")
        text = text[:max_chars]
    return Repaired(text, tuple(changes), truncated)


# What a control character or a lone surrogate looks like inside JSON text: an escape
# (``\u0000``-``\u001f``, ``\b``, ``\f``, ``\u007f``, ``\ud800``-``\udfff``) or a raw DEL.
# Valid JSON holds no other raw control characters, and valid UTF-8 no raw surrogates.
_JSON_SUSPECTS = ("\\u", "\\b", "\\f", "\x7f")
_JSON_SUSPECTS_BYTES = tuple(s.encode("ascii") for s in _JSON_SUSPECTS)


def json_may_need_repair(raw: bytes | str) -> bool:
    """False when JSON text surely decodes to strings the policy leaves alone (a fast pre-check;
    True may be a false alarm, e.g. an escaped "é", and then :func:`clean_tree` decides)."""
    if isinstance(raw, bytes | bytearray):
        return any(s in raw for s in _JSON_SUSPECTS_BYTES)
    return any(s in raw for s in _JSON_SUSPECTS)


def clean_tree(value: Any) -> tuple[Any, int]:
    """Every string in decoded JSON (dicts, lists, keys included) cleaned; and how many changed."""
    if isinstance(value, str):
        fixed = clean(value)
        return fixed, int(fixed is not value)
    if isinstance(value, list):
        items = [clean_tree(v) for v in value]
        return [v for v, _ in items], sum(n for _, n in items)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        changed = 0
        for key, item in value.items():
            new_key, n_key = clean_tree(key)
            out[new_key], n_item = clean_tree(item)
            changed += n_key + n_item
        return out, changed
    return value, 0
