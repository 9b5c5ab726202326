"""Odd provider replies (issue 9) through the real HTTP clients, replayed by the fake LLM
server's scripted mode: the same shapes as the unit table, over a real socket."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests

from qaflow.core import topics
from qaflow.core.errors import LlmTimeoutError, OverloadedError, PermanentLlmError, QuotaExceededError
from qaflow.core.messages import AnswerMessage, Origin, QuestionMessage, RetryMessage, decode_for_topic
from qaflow.core.retry import RetryPolicy
from qaflow.core.settings import LlmSettings
from qaflow.llm import make_provider
from qaflow.llm.base import LlmRequest
from qaflow.llm.fake_server import FakeLlmServer, Scripted
from qaflow.llm.http import HttpProvider
from qaflow.pipeline.answer import AnswerStage

KINDS = ["gemini", "ollama", "openai"]


@pytest.fixture
def fake(server: FakeLlmServer) -> FakeLlmServer:
    server.script([])
    requests.post(server.url + "/_reset", timeout=5)
    return server


def client(fake: FakeLlmServer, kind: str, **overrides: Any) -> HttpProvider:
    settings = {"llm_provider": kind, "llm_base_url": fake.url, "llm_api_key": "k", "llm_timeout_s": 5.0,
                "llm_connect_timeout_s": 2.0, **overrides}
    provider = make_provider(LlmSettings(**settings))
    assert isinstance(provider, HttpProvider)
    provider.start()
    return provider


def request() -> LlmRequest:
    return LlmRequest(question_id="q1", title="Why does bread go stale?", content="", generation=1, delivery=1,
                      prompt="Question: Why does bread go stale?")


def test_error_object_429_inside_a_200_takes_the_quota_path(fake: FakeLlmServer) -> None:
    # On the old main: "malformed reply: KeyError: 'choices'", a permanent failure.
    fake.script([Scripted(200, {"Retry-After": "3"},
                          {"error": {"message": "Rate limit exceeded: free-models-per-min", "code": 429}})])
    with pytest.raises(QuotaExceededError, match="Rate limit exceeded") as caught:
        client(fake, "openai").generate(request())
    assert caught.value.retry_after_s == 3.0


def test_gemini_max_tokens_without_parts_names_the_cause(fake: FakeLlmServer) -> None:
    # On the old main: "malformed reply: KeyError: 'parts'".
    fake.script([Scripted(200, body={"candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}],
                                     "usageMetadata": {"promptTokenCount": 9, "thoughtsTokenCount": 256}})])
    with pytest.raises(PermanentLlmError, match=r"output token limit.*MAX_TOKENS"):
        client(fake, "gemini").generate(request())


def test_openai_content_null_with_reasoning_content_names_the_cause(fake: FakeLlmServer) -> None:
    # On the old main: "malformed reply: empty answer", with no word of the cause.
    body = {"choices": [{"index": 0, "finish_reason": "length", "message": {
        "role": "assistant", "content": None, "reasoning_content": "First, starch molecules..."}}]}
    fake.script([Scripted(200, body=body)])
    with pytest.raises(PermanentLlmError, match="reasoning_content"):
        client(fake, "openai").generate(request())


@pytest.mark.parametrize(("kind", "body"), [
    ("openai", {"choices": [{"index": 0, "finish_reason": "length",
                             "message": {"role": "assistant", "content": "Bread goes stale because"}}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 4}}),
    ("ollama", {"model": "m", "message": {"role": "assistant", "content": "Bread goes stale because"},
                "done": True, "done_reason": "length", "prompt_eval_count": 9, "eval_count": 4}),
    ("gemini", {"candidates": [{"content": {"parts": [{"text": "Bread goes stale because"}]},
                                "finishReason": "MAX_TOKENS"}]}),
])
def test_a_length_stop_with_text_is_an_answer_marked_truncated(fake: FakeLlmServer, kind: str,
                                                               body: dict[str, Any]) -> None:
    fake.script([Scripted(200, body=body)])
    reply = client(fake, kind).generate(request())
    assert reply.text == "Bread goes stale because"
    assert reply.truncated
    assert reply.finish_reason in ("length", "MAX_TOKENS")


def test_ollama_ndjson_stream_is_joined(fake: FakeLlmServer) -> None:
    chunks = [{"model": "m", "message": {"role": "assistant", "content": part}, "done": False}
              for part in ("Bread ", "goes ", "stale.")]
    chunks.append({"model": "m", "message": {"role": "assistant", "content": ""}, "done": True,
                   "done_reason": "stop", "prompt_eval_count": 9, "eval_count": 3})
    body = "".join(json.dumps(c) + "\n" for c in chunks)
    fake.script([Scripted(200, {"Content-Type": "application/x-ndjson"}, body)])
    reply = client(fake, "ollama").generate(request())
    assert (reply.text, reply.finish_reason, reply.completion_tokens) == ("Bread goes stale.", "stop", 3)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("body", "cause"), [("", "empty body"),
                                             ("<html><body>Sign in to the proxy</body></html>", "HTML page")])
def test_empty_body_and_html_are_permanent_naming_the_shape(fake: FakeLlmServer, kind: str, body: str,
                                                            cause: str) -> None:
    fake.script([Scripted(200, {"Content-Type": "text/html"}, body)])
    with pytest.raises(PermanentLlmError, match=cause):
        client(fake, kind).generate(request())


@pytest.mark.parametrize("kind", KINDS)
def test_503_retry_after_as_http_date_reaches_the_retry_record(fake: FakeLlmServer, kind: str) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    fake.script([Scripted(503, {"Retry-After": when}, "busy")])
    stage = AnswerStage(client(fake, kind), RetryPolicy(retry_after_cap_s=300.0, overload_cap_s=1.0))
    q = QuestionMessage.new("Why does bread go stale?", "", "Starch recrystallises.")
    [out] = stage.handle(q, Origin(topic=topics.QUESTIONS, partition=0, offset=1))
    retry = decode_for_topic(out.topic, out.value)
    assert out.topic == topics.RETRY_OVERLOAD and isinstance(retry, RetryMessage)
    assert retry.retry_after_s is not None and 3.0 < retry.retry_after_s <= 5.0
    # On the old main the overload path ignored it: a jittered delay of at most overload_cap_s (1 s here).
    assert retry.not_before - time.time() > 3.0


def test_503_retry_after_in_seconds_is_capped_like_the_quota_path(fake: FakeLlmServer) -> None:
    fake.script([Scripted(503, {"Retry-After": "3600"}, "busy")])
    stage = AnswerStage(client(fake, "openai"), RetryPolicy(retry_after_cap_s=30.0))
    [out] = stage.handle(QuestionMessage.new("t", "", "r"), Origin(topic=topics.QUESTIONS))
    retry = decode_for_topic(out.topic, out.value)
    assert isinstance(retry, RetryMessage) and retry.retry_after_s == 3600.0
    assert 25.0 < retry.not_before - time.time() <= 30.0


def test_a_nul_and_an_over_long_answer_through_the_real_client(fake: FakeLlmServer) -> None:
    loop = "bread " * 10_617  # 63,702 characters
    fake.script([
        Scripted(200, body={"choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": "Stale\u0000 bread."}}]}),
        Scripted(200, body={"choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": loop}}]}),
    ])
    stage = AnswerStage(client(fake, "openai"), RetryPolicy())
    q = QuestionMessage.new("t", "", "r")
    answers = []
    for _ in range(2):
        [out] = stage.handle(q, Origin(topic=topics.QUESTIONS))
        assert out.topic == topics.ANSWERS
        answers.append(decode_for_topic(out.topic, out.value))
    nul, long = answers
    assert isinstance(nul, AnswerMessage) and nul.answer == "Stale bread."
    assert isinstance(long, AnswerMessage) and long.truncated and len(long.answer) == 50_000


def test_scripted_delay_makes_a_timeout_and_the_script_then_runs_out(fake: FakeLlmServer) -> None:
    fake.script([Scripted(200, body={"error": "late"}, delay_s=0.6)])
    with pytest.raises(LlmTimeoutError):
        client(fake, "ollama", llm_timeout_s=0.2, llm_connect_timeout_s=0.2).generate(request())
    time.sleep(0.5)  # the scripted reply is still being delayed; let it finish
    assert "it depends on the details" in client(fake, "ollama").generate(request()).text  # the knobs' echo again
    assert fake.stats()["faults"].get("scripted") == 1


def test_script_over_http(fake: FakeLlmServer) -> None:
    script = [{"status": 503, "headers": {"Retry-After": "2"}, "body": "busy"}]
    assert requests.post(fake.url + "/_script", json=script, timeout=5).json() == {"scripted": 1}
    with pytest.raises(OverloadedError) as caught:
        client(fake, "openai").generate(request())
    assert caught.value.retry_after_s == 2.0
    assert requests.post(fake.url + "/_script", json=[{"nope": 1}], timeout=5).status_code == 400
