"""Hostile text through the pure entrances (issue 9): LLM replies into the llm stage, the
quality gate for truncated answers, and data-set rows (the text policy and the csv limit)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from qaflow.cli.dataset import dataset as dataset_cli
from qaflow.core import topics
from qaflow.core.errors import OverloadedError
from qaflow.core.messages import MAX_ANSWER, AnswerMessage, ResultMessage, RetryMessage, ScoreRecord, Status
from qaflow.core.retry import RetryPolicy
from qaflow.core.routing import Route, route
from qaflow.core.text import REPLACEMENT
from qaflow.datasets import open_dataset
from qaflow.llm.base import LlmReply, LlmRequest
from qaflow.pipeline.answer import AnswerStage
from qaflow.pipeline.score import GatePolicy, ScoreStage
from tests.unit.test_stages import ORIGIN, TableScorer, decoded, question

CSV_LIMIT = 131_072  # csv.field_size_limit() default


class OneReply:
    name = "one"

    def __init__(self, reply: LlmReply | Exception) -> None:
        self.reply = reply

    def start(self) -> None: ...
    def close(self) -> None: ...

    def generate(self, request: LlmRequest) -> LlmReply:
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


def reply(text: str, **kw: object) -> LlmReply:
    return LlmReply(text=text, model="m", provider="openai", latency_ms=1.0, **kw)  # type: ignore[arg-type]


def answer_of(stage: AnswerStage) -> AnswerMessage:
    [out] = stage.handle(question(), ORIGIN)
    assert out.topic == topics.ANSWERS
    message = decoded(out)
    assert isinstance(message, AnswerMessage)
    return message


# --- LLM replies into the llm stage --------------------------------------------------------


def test_a_nul_in_an_answer_is_removed_and_recorded() -> None:
    message = answer_of(AnswerStage(OneReply(reply("Stale\x00 bread is dry.")), RetryPolicy()))
    assert message.answer == "Stale bread is dry."
    assert message.text_changes == ("removed 1 control character",)
    assert b"\\u0000" not in message.encode()


def test_an_over_long_answer_is_cut_and_marked_truncated() -> None:
    # 63,700 characters: a repetition loop; on the old main a pydantic string_too_long traceback.
    loop = ("bread " * 10_617)[:63_700]
    message = answer_of(AnswerStage(OneReply(reply(loop, finish_reason="stop")), RetryPolicy()))
    assert len(message.answer) == MAX_ANSWER
    assert message.truncated and message.finish_reason == "stop"
    assert message.text_changes == (f"truncated {len(loop.strip())} to {MAX_ANSWER} characters",)


def test_a_provider_length_stop_is_kept_beside_the_answer() -> None:
    message = answer_of(AnswerStage(OneReply(reply("Bread goes", finish_reason="length", truncated=True)),
                                    RetryPolicy()))
    assert (message.answer, message.finish_reason, message.truncated) == ("Bread goes", "length", True)


def test_an_answer_of_only_control_characters_is_a_permanent_failure() -> None:
    [out] = AnswerStage(OneReply(reply("\x00\x01\x02")), RetryPolicy()).handle(question(), ORIGIN)
    assert out.topic == topics.DEAD_LETTER
    assert "no answer text left after the text policy" in decoded(out).reason  # type: ignore[attr-defined]


def test_retry_after_of_a_503_sets_the_delay_and_is_recorded() -> None:
    exc = OverloadedError("openai: HTTP 503: busy", status=503, retry_after_s=5.0)
    stage = AnswerStage(OneReply(exc), RetryPolicy(retry_after_cap_s=300.0))
    [out] = stage.handle(question(), ORIGIN)
    retry = decoded(out)
    assert isinstance(retry, RetryMessage) and out.topic == topics.RETRY_OVERLOAD
    assert retry.retry_after_s == 5.0
    assert 4.0 < retry.not_before - time.time() <= 5.0  # the jittered backoff would be at most 1 s


# --- the quality gate ----------------------------------------------------------------------


def test_a_truncated_answer_is_never_validated() -> None:
    assert route(0.974, 0.8, 1, 3) is Route.VALIDATED
    assert route(0.974, 0.8, 1, 3, truncated=True) is Route.REGENERATE
    assert route(0.974, 0.8, 3, 3, truncated=True) is Route.EXHAUSTED


def test_a_high_scoring_truncated_answer_is_regenerated_then_stored_as_truncated() -> None:
    stage = ScoreStage(TableScorer({"cut": 0.974, "whole": 0.9}), GatePolicy(0.8, 2))
    q = question()
    cut = AnswerMessage(question=q, answer="cut", model="m", provider="p", latency_ms=1.0,
                        finish_reason="length", truncated=True)
    out = stage.handle_batch([cut])
    assert [o.topic for o in out] == [topics.SCORES, topics.QUESTIONS]
    history = decoded(out[0])
    assert isinstance(history, ScoreRecord) and history.truncated and history.finish_reason == "length"
    again = decoded(out[1])
    last = AnswerMessage(question=again, answer="cut", model="m", provider="p", latency_ms=1.0,  # type: ignore[arg-type]
                         finish_reason="length", truncated=True)
    out = stage.handle_batch([last])
    result = decoded(out[-1])
    assert isinstance(result, ResultMessage)
    assert result.status is Status.EXHAUSTED and result.truncated


# --- data sets -----------------------------------------------------------------------------


def test_a_csv_field_over_the_csv_limit_is_skipped_as_too_long_and_the_rest_read(tmp_path: Path) -> None:
    huge = "x" * (CSV_LIMIT + 10)
    path = tmp_path / "huge.csv"
    path.write_text(f'"1","first","","a"\n"2","huge","{huge}","b"\n"3","third","","c"\n', encoding="utf-8")
    data = open_dataset(path, fmt="zhang")
    assert [q.title for q in data] == ["first", "third"]  # the old main aborted: field larger than field limit
    assert data.report.skipped == {"too long": 1}
    assert data.report.complete


def test_a_huge_field_in_an_hf_csv_is_skipped_too(tmp_path: Path) -> None:
    path = tmp_path / "hf.csv"
    huge = "y" * (CSV_LIMIT * 2)
    path.write_text("id,topic,question_title,question_content,best_answer\n"
                    f'1,0,first,,a\n2,1,huge,,"{huge}"\n3,2,third,,c\n', encoding="utf-8")
    data = open_dataset(path)
    assert [q.title for q in data] == ["first", "third"]
    assert data.report.skipped == {"too long": 1}


def test_a_60k_field_is_skipped_as_too_long_as_before(tmp_path: Path) -> None:
    path = tmp_path / "60k.csv"
    path.write_text(f'"1","t","","{"z" * 60_000}"\n"1","ok","","a"\n', encoding="utf-8")
    data = open_dataset(path, fmt="zhang")
    assert [q.title for q in data] == ["ok"]
    assert data.report.skipped == {"too long": 1}


def jsonl(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_lone_surrogate_row_is_repaired_and_counted(tmp_path: Path) -> None:
    # A JSON "\ud800" escape decodes to a lone surrogate: UnicodeEncodeError in ids.question_id on the old main.
    path = jsonl(tmp_path,
                 '{"topic": 0, "question_title": "Why does bread go stale \\ud800?", '
                 '"question_content": "", "best_answer": "Starch."}',
                 '{"topic": 1, "question_title": "NUL\\u0000 in a title", "question_content": "", '
                 '"best_answer": "Fine\\u0000."}')
    data = open_dataset(path)
    questions = list(data)
    assert [q.title for q in questions] == [f"Why does bread go stale {REPLACEMENT}?", "NUL in a title"]
    assert questions[1].reference_answer == "Fine."
    assert data.report.repaired == 2
    assert "2 repaired" in data.report.summary()


def test_dataset_inspect_reports_repairs_and_skips_without_a_traceback(tmp_path: Path) -> None:
    path = jsonl(tmp_path, json.dumps({"topic": 0, "question_title": "t \ud800", "question_content": "",
                                       "best_answer": "a"}, ensure_ascii=True))
    result = CliRunner().invoke(dataset_cli, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert result.exception is None
    assert "repaired" in result.output


@pytest.mark.parametrize("fmt", ["zhang"])
def test_inspect_counts_a_huge_csv_field(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "huge.csv"
    path.write_text(f'"1","t","","{"x" * (CSV_LIMIT + 1)}"\n"1","ok","","a"\n', encoding="utf-8")
    result = CliRunner().invoke(dataset_cli, ["inspect", "--format", fmt, str(path)])
    assert result.exit_code == 0, result.output
    assert "too long" in result.output


def test_a_huge_field_over_two_lines_costs_its_row_not_the_file(tmp_path: Path) -> None:
    path = tmp_path / "multiline.csv"
    path.write_text(f'"1","first","","a"\n"2","huge","{"x" * (CSV_LIMIT + 1)}\nmore text","b"\n"3","third","","c"\n',
                    encoding="utf-8")
    data = open_dataset(path, fmt="zhang")
    assert [q.title for q in data] == ["first", "third"]
    assert data.report.skipped["too long"] == 1
    assert data.report.skipped_total == 2  # the field's second line is a short row of its own
