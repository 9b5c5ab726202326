"""Checking a submitted question: pure Python, no Flask, every problem named by its field.

Strings must be valid Unicode without NUL characters (PostgreSQL's TEXT refuses NUL; a
lone surrogate such as ``"\\ud800"`` cannot be encoded), the required ones must not be
blank, and each has the length limit of its message schema. Unknown fields are refused,
so a misspelt ``reference_anwser`` is a 422, not a silently missing reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from qaflow.core.ids import is_question_id
from qaflow.core.messages import MAX_ANSWER, MAX_CONTENT, MAX_TITLE, QuestionMessage, describe

MAX_RUN_ID = 200
CATEGORY_MIN, CATEGORY_MAX = 1, 10


@dataclass(frozen=True, slots=True)
class FieldSpec:
    max_length: int
    required: bool  # must be present and not blank


TEXT_FIELDS: dict[str, FieldSpec] = {
    "title": FieldSpec(MAX_TITLE, required=True),
    "content": FieldSpec(MAX_CONTENT, required=False),
    "reference_answer": FieldSpec(MAX_ANSWER, required=True),
    "run_id": FieldSpec(MAX_RUN_ID, required=False),
}
FIELDS = (*TEXT_FIELDS, "category")


class InvalidQuestion(ValueError):
    """The request body is not a valid question; ``errors`` lists every problem found."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['detail']}" if e["field"] else e["detail"] for e in errors))
        self.errors = errors

    @property
    def field(self) -> str | None:
        return self.errors[0]["field"] or None


def text_problem(value: Any, spec: FieldSpec) -> str | None:
    """Why ``value`` is not an acceptable text for ``spec``, or None."""
    if value is None:
        return "is required" if spec.required else None
    if not isinstance(value, str):
        return f"must be a string, got {_json_type(value)}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (lone surrogate)"
    if "\x00" in value:
        return "must not contain NUL characters"
    if spec.required and not value.strip():
        return "must not be empty or blank"
    if len(value) > spec.max_length:
        return f"is longer than {spec.max_length} characters (got {len(value)})"
    return None


def parse_question(body: Any, default_run_id: str | None = None) -> QuestionMessage:
    """A decoded JSON body to a new :class:`QuestionMessage`, or :class:`InvalidQuestion`."""
    if not isinstance(body, dict):
        raise InvalidQuestion([{"field": "", "detail": f"body must be a JSON object, got {_json_type(body)}"}])
    errors = [{"field": k, "detail": "unknown field"} for k in body if k not in FIELDS]
    for name, spec in TEXT_FIELDS.items():
        if name not in body and spec.required:
            errors.append({"field": name, "detail": "is required"})
        elif (problem := text_problem(body.get(name), spec)) is not None:
            errors.append({"field": name, "detail": problem})
    category = _integer(body.get("category"))
    if category is not None and (
        isinstance(category, bool) or not isinstance(category, int) or not CATEGORY_MIN <= category <= CATEGORY_MAX
    ):
        errors.append({"field": "category", "detail": f"must be an integer from {CATEGORY_MIN} to {CATEGORY_MAX}"})
    if errors:
        raise InvalidQuestion(errors)
    run_id = body.get("run_id") or default_run_id  # "" and null both mean "the default"
    try:
        return QuestionMessage.new(
            body["title"], body.get("content") or "", body["reference_answer"], category=category, run_id=run_id
        )
    except ValidationError as exc:  # pragma: no cover - the checks above mirror the schema
        raise InvalidQuestion([{"field": "", "detail": describe(exc)}]) from exc


def parse_batch(body: Any, max_items: int, default_run_id: str | None = None) -> list[QuestionMessage]:
    """A decoded ``{"questions": [question, ...]}`` body to its questions, in order; all or nothing.

    Each item is checked by :func:`parse_question`; every problem of every item is reported, its
    field prefixed with the item's index (``questions[3].title``). An empty list, more than
    ``max_items`` items, or any other top-level field is an :class:`InvalidQuestion` too.
    """
    if not isinstance(body, dict):
        raise InvalidQuestion([{"field": "", "detail": f"body must be a JSON object, got {_json_type(body)}"}])
    errors = [{"field": k, "detail": "unknown field"} for k in body if k != "questions"]
    items = body.get("questions")
    if not isinstance(items, list):
        detail = "is required" if items is None else f"must be an array, got {_json_type(items)}"
        raise InvalidQuestion([*errors, {"field": "questions", "detail": detail}])
    if not items:
        errors.append({"field": "questions", "detail": "must hold at least one question"})
    elif len(items) > max_items:
        errors.append({"field": "questions", "detail": f"holds {len(items)} questions; at most {max_items} "
                                                       "per batch (QAFLOW_MAX_BATCH_QUESTIONS)"})
    if errors:
        raise InvalidQuestion(errors)
    questions: list[QuestionMessage] = []
    for index, item in enumerate(items):
        try:
            questions.append(parse_question(item, default_run_id))
        except InvalidQuestion as exc:
            prefix = f"questions[{index}]"
            errors.extend({"field": f"{prefix}.{e['field']}" if e["field"] else prefix, "detail": e["detail"]}
                          for e in exc.errors)
    if errors:
        raise InvalidQuestion(errors)
    return questions


def _integer(value: Any) -> Any:
    """``3.0`` -> ``3``: JSON Schema counts a number with a zero fractional part as an integer
    (JSON Schema 2020-12, Validation section 6.1.1, "type"); booleans stay what they are."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def parse_run_id(values: list[str]) -> str | None:
    """The ``run_id`` query parameter (given at most once, same rules as the body's field),
    or None when absent or empty; raises :class:`InvalidQuestion` naming ``run_id``."""
    if len(values) > 1:
        raise InvalidQuestion([{"field": "run_id", "detail": f"given {len(values)} times; give it once"}])
    value = values[0] if values else ""
    problem = text_problem(value, TEXT_FIELDS["run_id"])
    if problem is not None:
        raise InvalidQuestion([{"field": "run_id", "detail": problem}])
    return value or None


def parse_question_id(raw: str) -> str | None:
    """The canonical (lower-case) id, or None when ``raw`` is not a question id."""
    value = raw.lower()
    return value if is_question_id(value) else None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"
