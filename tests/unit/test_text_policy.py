"""The core text policy (qaflow.core.text) and the entrances that apply it: ids and the bus codec."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qaflow.core.ids import question_id
from qaflow.core.messages import MAX_ANSWER, AnswerMessage, QuestionMessage, decode
from qaflow.core.text import REPLACEMENT, clean, clean_tree, json_may_need_repair, repair

LONE = "\ud800"


def test_nul_and_controls_are_removed_and_recorded() -> None:
    fixed = repair("bread\x00 goes\x07 stale")
    assert fixed.text == "bread goes stale"
    assert fixed.changes == ("removed 2 control characters",)
    assert not fixed.truncated


def test_whitespace_controls_become_spaces_so_words_stay_apart() -> None:
    assert clean("a\x0bb\x0cc\x1fd") == "a b c d"
    assert clean("keeps\ttabs\nand\r\nnewlines") == "keeps\ttabs\nand\r\nnewlines"


def test_lone_surrogates_are_replaced_and_recorded() -> None:
    fixed = repair(f"Why does bread go stale {LONE}?")
    assert fixed.text == f"Why does bread go stale {REPLACEMENT}?"
    assert fixed.changes == ("replaced 1 lone surrogate",)
    fixed.text.encode("utf-8")  # no UnicodeEncodeError


def test_over_long_text_is_cut_at_the_limit_and_marked_truncated() -> None:
    loop = "I am sure. " * 5_791  # 63,701 characters: a repetition loop of a local model
    fixed = repair(loop, MAX_ANSWER)
    assert len(fixed.text) == MAX_ANSWER
    assert fixed.truncated
    assert fixed.changes == (f"truncated {len(loop)} to {MAX_ANSWER} characters",)
    assert not repair("short", MAX_ANSWER).changed


def test_clean_text_is_returned_unchanged() -> None:
    text = "nothing to do here, 水 and é included"
    assert clean(text) is text
    assert repair(text) == repair(text)


@given(st.text())
def test_any_text_comes_out_encodable_without_nul_and_stable(text: str) -> None:
    fixed = clean(text)
    fixed.encode("utf-8")
    assert "\x00" not in fixed
    assert clean(fixed) == fixed
    assert question_id(text) == question_id(fixed)


def test_question_id_of_a_lone_surrogate_does_not_raise() -> None:
    # On the old main this raised UnicodeEncodeError ("surrogates not allowed").
    title = f"Why does bread go stale {LONE}?"
    assert question_id(title) == question_id(f"Why does bread go stale {REPLACEMENT}?")


def test_clean_tree_reaches_nested_strings_and_keys() -> None:
    data, changed = clean_tree({"a\x00": ["x\x00", {"b": LONE}], "n": 3, "ok": "fine"})
    assert data == {"a": ["x", {"b": REPLACEMENT}], "n": 3, "ok": "fine"}
    assert changed == 3


def _answer_json(answer_escape: str, title_escape: str | None = None) -> str:
    """An answer record as another producer might write it, with raw JSON escapes spliced in."""
    q = QuestionMessage.new(f"Why is bread stale {REPLACEMENT}", "", "Because of starch.")
    raw = json.loads(AnswerMessage(question=q, answer="placeholder", model="m", provider="p",
                                   latency_ms=1.0).encode())
    text = json.dumps(raw).replace('"placeholder"', f'"an {answer_escape} answer"')
    return text.replace("\\ufffd", title_escape) if title_escape else text


def test_decode_repairs_a_nul_written_by_another_producer() -> None:
    # A JSON "\u0000" is valid JSON but PostgreSQL's jsonb and text refuse it.
    message = decode(AnswerMessage, _answer_json("\\u0000"))
    assert message.answer == "an  answer"
    assert b"\\u0000" not in message.encode()


def test_decode_repairs_a_lone_surrogate_and_the_id_still_matches() -> None:
    message = decode(AnswerMessage, _answer_json("\\ud800", title_escape="\\udc00"))
    assert message.answer == f"an {REPLACEMENT} answer"
    assert message.question.title.endswith(REPLACEMENT)
    message.encode()  # encodable: on the old main this raised a UnicodeEncodeError


@pytest.mark.parametrize("field", ["finish_reason", "truncated", "text_changes"])
def test_answer_message_new_fields_are_optional(field: str) -> None:
    q = QuestionMessage.new("t", "", "r")
    plain = AnswerMessage(question=q, answer="a", model="m", provider="p", latency_ms=0.0)
    assert field in json.loads(plain.encode())
    assert decode(AnswerMessage, plain.encode()) == plain


@given(st.dictionaries(st.text(max_size=5), st.text()), st.booleans())
def test_the_fast_json_pre_check_never_misses_a_repair(data: dict[str, str], ascii_only: bool) -> None:
    try:
        raw = json.dumps(data, ensure_ascii=ascii_only)
        raw.encode("utf-8")
    except UnicodeEncodeError:
        return  # a raw lone surrogate cannot be sent as UTF-8 bytes at all
    if not json_may_need_repair(raw) or not json_may_need_repair(raw.encode("utf-8")):
        assert clean_tree(json.loads(raw)) == (data, 0)
