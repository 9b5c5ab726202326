"""``repaired`` (the text policy before a store write) skips the string walk for clean messages
(issue 13: the walk was a tenth of the storage-writer's CPU) and still repairs every kind of
bad text: a control character, DEL, and a lone surrogate (which cannot even be serialised)."""

from __future__ import annotations

import time

import pytest

from qaflow.core.messages import ResultMessage, Status
from qaflow.store.sql import repaired


def result(answer: str) -> ResultMessage:
    now = time.time()
    clean = ResultMessage(question_id="0" * 32, status=Status.VALIDATED, title="Un titre é", content="a\nb",
                          reference_answer="r", answer="x", score=0.9, generations=1, delivery=1,
                          submitted_at=now, finished_at=now)
    return clean.model_copy(update={"answer": answer})  # unvalidated, as a message built in process


def test_a_clean_message_is_returned_as_it_is() -> None:
    message = result("tabs\tand\nnew lines, accents é and emoji \U0001f600 are fine")
    assert repaired(message) is message


@pytest.mark.parametrize(("answer", "expected"), [
    ("nul\x00here", "nulhere"),
    ("del\x7fhere", "delhere"),
    ("vertical\x0btab", "vertical tab"),
    ("lone \ud800 surrogate", "lone \ufffd surrogate"),
])
def test_bad_text_is_still_repaired(answer: str, expected: str) -> None:
    assert repaired(result(answer)).answer == expected
