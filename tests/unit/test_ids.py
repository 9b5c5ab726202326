import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from qaflow.core.ids import ID_LENGTH, is_question_id, normalise, question_id


@given(st.text(), st.text())
def test_id_is_stable_hex(title: str, content: str) -> None:
    qid = question_id(title, content)
    assert qid == question_id(title, content)
    assert len(qid) == ID_LENGTH and is_question_id(qid)


@given(st.text(min_size=1), st.text())
def test_case_spacing_and_composition_do_not_change_the_id(title: str, content: str) -> None:
    variant = "  " + unicodedata.normalize("NFD", title.upper()) + "\t"
    assert question_id(variant, content + " ") == question_id(title.upper(), content)


def test_title_content_boundary_matters() -> None:
    assert question_id("ab", "c") != question_id("a", "bc")


def test_different_questions_differ() -> None:
    assert question_id("Why is the sky blue?") != question_id("Why is the sea blue?")


def test_normalise_collapses_whitespace_and_case() -> None:
    assert normalise("  Caf\u00e9\n\tOK ") == "café ok"
