import json

import pytest

from qaflow.core import topics
from qaflow.core.errors import InvalidMessageError
from qaflow.core.messages import (
    AnswerMessage,
    DeadLetter,
    Origin,
    QuestionMessage,
    ResultMessage,
    Status,
    decode,
    decode_for_topic,
)


def question(**kw: object) -> QuestionMessage:
    return QuestionMessage.new("Why is the sky blue?", "", "Rayleigh scattering of sunlight.", **kw)  # type: ignore[arg-type]


def test_round_trip_every_topic() -> None:
    q = question(category=2, run_id="r1")
    a = AnswerMessage(question=q, answer="Because of scattering.", model="m", provider="offline", latency_ms=1.0)
    r = ResultMessage(
        question_id=q.question_id, status=Status.VALIDATED, title=q.title, answer="x", score=0.9,
        best_generation=1, generations=1, submitted_at=q.submitted_at,
    )
    d = DeadLetter(reason="bad", stage="llm", origin=Origin(topic=topics.QUESTIONS, partition=0, offset=3))
    for topic, msg in [(topics.QUESTIONS, q), (topics.ANSWERS, a), (topics.RESULTS, r), (topics.DEAD_LETTER, d)]:
        assert decode_for_topic(topic, msg.encode()) == msg


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe", "not valid UTF-8 JSON"),
        (b"{not json", "not valid UTF-8 JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b'{"v": 2}', "v: unsupported schema version 2"),
        (b'{"v": 1}', "question_id: Field required"),
    ],
)
def test_malformed_records_are_rejected_with_a_precise_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidMessageError) as err:
        decode(QuestionMessage, raw)
    assert str(err.value).startswith(reason)


def field_error(data: dict[str, object]) -> str:
    with pytest.raises(InvalidMessageError) as err:
        decode(QuestionMessage, json.dumps(data))
    return str(err.value)


def test_field_level_errors_name_the_field() -> None:
    good = json.loads(question().encode())
    assert field_error({**good, "title": ""}).startswith("title:")
    assert field_error({**good, "reference_answer": ""}).startswith("reference_answer:")
    assert field_error({**good, "generation": 0}).startswith("generation:")
    assert field_error({**good, "extra": 1}).startswith("extra:")
    assert field_error({**good, "title": "x" * 1001}).startswith("title:")
    assert "does not match the hash" in field_error({**good, "title": "Why is the sea blue?"})


def test_result_fields_must_fit_the_status() -> None:
    base = {"question_id": "0" * 32, "title": "t", "generations": 1, "submitted_at": 0.0}
    with pytest.raises(ValueError, match="needs an answer and a score"):
        ResultMessage(status=Status.VALIDATED, **base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs an error"):
        ResultMessage(status=Status.FAILED, **base)  # type: ignore[arg-type]
    ResultMessage(status=Status.FAILED, error="boom", **base)  # type: ignore[arg-type]


def test_terminal_statuses() -> None:
    assert {s for s in Status if s.terminal} == {Status.VALIDATED, Status.EXHAUSTED, Status.FAILED}
