"""The table of provider reply shapes, per wire format: each maps to an error class with a
message naming the cause, or to an answer with its finish reason (qaflow.llm.replies).

Pure: ``HttpProvider.read(status, headers, body)`` is what ``generate`` runs on every reply;
the same shapes go through the real HTTP clients in tests/integration/test_llm_replies_http.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from qaflow.core.errors import ErrorClass, LlmError
from qaflow.core.settings import LlmSettings
from qaflow.llm import make_provider
from qaflow.llm.http import HttpProvider

ANSWER = "Bread goes stale because its starch recrystallises."


def client(kind: str) -> HttpProvider:
    provider = make_provider(LlmSettings(llm_provider=kind, llm_api_key="k"))
    assert isinstance(provider, HttpProvider)
    return provider


def openai(content: Any, finish: str | None = "stop", **message: Any) -> str:
    return json.dumps({"id": "x", "object": "chat.completion", "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": content, **message}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 8}})


def gemini(parts: list[dict[str, Any]] | None, finish: str = "STOP") -> str:
    candidate: dict[str, Any] = {"finishReason": finish, "index": 0}
    if parts is not None:
        candidate["content"] = {"role": "model", "parts": parts}
    else:
        candidate["content"] = {"role": "model"}  # the thinking budget ate the output: no parts
    return json.dumps({"candidates": [candidate], "usageMetadata": {"promptTokenCount": 10,
                                                                    "candidatesTokenCount": 8}})


def ollama(content: str, reason: str = "stop", **message: Any) -> str:
    return json.dumps({"model": "m", "message": {"role": "assistant", "content": content, **message},
                       "done": True, "done_reason": reason, "prompt_eval_count": 10, "eval_count": 8})


def ndjson(*chunks: dict[str, Any]) -> str:
    return "\n".join(json.dumps(c) for c in chunks) + "\n"


HTML = "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
PORTAL = "<!DOCTYPE html><html><body>Please log in to continue</body></html>"
JSON = {"Content-Type": "application/json"}

# (wire format, case, status, headers, body, expected): expected is an ErrorClass with a
# regex the message must match, or ("answer", text, finish_reason, truncated).
Expected = tuple[Any, ...]
TABLE: list[tuple[str, str, int, dict[str, str], str, Expected]] = [
    # --- OpenAI-compatible ---
    ("openai", "normal", 200, JSON, openai(ANSWER), ("answer", ANSWER, "stop", False)),
    ("openai", "safety block", 200, JSON, openai(None, "content_filter"),
     (ErrorClass.PERMANENT, "content_filter")),
    ("openai", "prompt blocked (400 content_filter)", 400, JSON,
     json.dumps({"error": {"message": "The prompt was filtered", "code": "content_filter"}}),
     (ErrorClass.PERMANENT, "HTTP 400.*filtered")),
    ("openai", "refusal", 200, JSON, openai(None, "stop", refusal="I can't help with that."),
     (ErrorClass.PERMANENT, "refused")),
    ("openai", "length without text", 200, JSON, openai("", "length"),
     (ErrorClass.PERMANENT, "no answer text.*output token limit.*finish reason length")),
    ("openai", "length with text", 200, JSON, openai("Bread goes stale because", "length"),
     ("answer", "Bread goes stale because", "length", True)),
    ("openai", "content null with reasoning_content", 200, JSON,
     openai(None, "length", reasoning_content="Let me think about starch..." * 20),
     (ErrorClass.PERMANENT, "content is null.*only reasoning_content")),
    ("openai", "error object 429 inside a 200", 200, JSON,
     json.dumps({"error": {"message": "Rate limit exceeded: free-models-per-min", "code": 429}}),
     (ErrorClass.QUOTA, "error object in a 2xx reply \\(429\\).*Rate limit")),
    ("openai", "error object 503 inside a 200", 200, JSON,
     json.dumps({"error": {"message": "upstream overloaded", "code": 503}}),
     (ErrorClass.OVERLOAD, "error object in a 2xx reply \\(503\\)")),
    ("openai", "error object 400 inside a 200", 200, JSON,
     json.dumps({"error": {"message": "model not found", "code": 400}}),
     (ErrorClass.PERMANENT, "error object in a 2xx reply \\(400\\).*model not found")),
    ("openai", "SSE streaming", 200, {"Content-Type": "text/event-stream"},
     "".join(f"data: {json.dumps(c)}\n\n" for c in (
         {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Bread goes "}}]},
         {"choices": [{"index": 0, "delta": {"content": "stale."}, "finish_reason": "stop"}]},
     )) + "data: [DONE]\n\n",
     ("answer", "Bread goes stale.", "stop", False)),
    ("openai", "empty body", 200, JSON, "", (ErrorClass.PERMANENT, "empty body")),
    ("openai", "HTML from a proxy in a 200", 200, {"Content-Type": "text/html"}, PORTAL,
     (ErrorClass.PERMANENT, "HTML page, not JSON")),
    ("openai", "HTML from a proxy in a 502", 502, {"Content-Type": "text/html"}, HTML,
     (ErrorClass.OVERLOAD, "HTTP 502.*Bad Gateway")),
    ("openai", "no choices", 200, JSON, json.dumps({"id": "x", "choices": []}),
     (ErrorClass.PERMANENT, "malformed reply: no choices")),
    # --- Gemini ---
    ("gemini", "normal", 200, JSON, gemini([{"text": ANSWER}]), ("answer", ANSWER, "STOP", False)),
    ("gemini", "safety block", 200, JSON, gemini(None, "SAFETY"),
     (ErrorClass.PERMANENT, "finishReason SAFETY \\(blocked by the safety filters\\)")),
    ("gemini", "prompt blocked", 200, JSON, json.dumps({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}),
     (ErrorClass.PERMANENT, "prompt blocked \\(PROHIBITED_CONTENT\\)")),
    ("gemini", "MAX_TOKENS without parts", 200, JSON, gemini(None, "MAX_TOKENS"),
     (ErrorClass.PERMANENT, "no answer text.*output token limit.*MAX_TOKENS")),
    ("gemini", "MAX_TOKENS with text", 200, JSON, gemini([{"text": "Bread goes"}], "MAX_TOKENS"),
     ("answer", "Bread goes", "MAX_TOKENS", True)),
    ("gemini", "thought parts only", 200, JSON, gemini([{"text": "thinking...", "thought": True}], "MAX_TOKENS"),
     (ErrorClass.PERMANENT, "no answer text.*MAX_TOKENS")),
    ("gemini", "error object inside a 200", 200, JSON,
     json.dumps({"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}}),
     (ErrorClass.QUOTA, "RESOURCE_EXHAUSTED")),
    ("gemini", "streamed JSON array", 200, JSON,
     json.dumps([json.loads(gemini([{"text": "Bread goes "}])), json.loads(gemini([{"text": "stale."}]))]),
     ("answer", "Bread goes stale.", "STOP", False)),
    ("gemini", "error inside a streamed JSON array", 200, JSON,
     json.dumps([json.loads(gemini([{"text": "Bread "}])), {"error": {"code": 503, "status": "UNAVAILABLE",
                                                                      "message": "The model is overloaded."}}]),
     (ErrorClass.OVERLOAD, "UNAVAILABLE")),
    ("gemini", "SSE streaming", 200, {"Content-Type": "text/event-stream"},
     f"data: {gemini([{'text': 'Bread goes '}], 'STOP')}\r\n\r\ndata: {gemini([{'text': 'stale.'}])}\r\n\r\n",
     ("answer", "Bread goes stale.", "STOP", False)),
    ("gemini", "empty body", 200, JSON, "  \n", (ErrorClass.PERMANENT, "empty body")),
    ("gemini", "HTML from a proxy", 200, {"Content-Type": "text/html"}, PORTAL,
     (ErrorClass.PERMANENT, "HTML page")),
    ("gemini", "503 with Retry-After", 503, {"Retry-After": "5"}, "{}", (ErrorClass.OVERLOAD, "HTTP 503")),
    # --- Ollama ---
    ("ollama", "normal", 200, JSON, ollama(ANSWER), ("answer", ANSWER, "stop", False)),
    ("ollama", "length with text", 200, JSON, ollama("Bread goes stale be", "length"),
     ("answer", "Bread goes stale be", "length", True)),
    ("ollama", "length without text", 200, JSON, ollama("", "length", thinking="Hmm, starch..." * 30),
     (ErrorClass.PERMANENT, "no answer text.*finish reason length.*only thinking")),
    ("ollama", "NDJSON streaming", 200, {"Content-Type": "application/x-ndjson"}, ndjson(
        {"model": "m", "message": {"role": "assistant", "content": "Bread goes "}, "done": False},
        {"model": "m", "message": {"role": "assistant", "content": "stale."}, "done": False},
        {"model": "m", "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
         "prompt_eval_count": 10, "eval_count": 8}),
     ("answer", "Bread goes stale.", "stop", False)),
    ("ollama", "error inside a stream", 200, {"Content-Type": "application/x-ndjson"}, ndjson(
        {"model": "m", "message": {"role": "assistant", "content": "Bread"}, "done": False},
        {"error": "server overloaded, please retry shortly"}),
     (ErrorClass.OVERLOAD, "overloaded")),
    ("ollama", "error object inside a 200", 200, JSON, json.dumps({"error": "model 'x' not found"}),
     (ErrorClass.PERMANENT, "model 'x' not found")),
    ("ollama", "empty body", 200, JSON, "", (ErrorClass.PERMANENT, "empty body")),
    ("ollama", "HTML from a proxy", 200, {"Content-Type": "text/html"}, HTML, (ErrorClass.PERMANENT, "HTML page")),
    ("ollama", "not JSON at all", 200, JSON, "Internal error, try later",
     (ErrorClass.PERMANENT, "malformed reply: not JSON")),
]


@pytest.mark.parametrize(("kind", "case", "status", "headers", "body", "expected"), TABLE,
                         ids=[f"{row[0]}-{row[1]}" for row in TABLE])
def test_reply_shape(kind: str, case: str, status: int, headers: dict[str, str], body: str,
                     expected: Expected) -> None:
    provider = client(kind)
    if expected[0] == "answer":
        parsed = provider.read(status, headers, body)
        assert (parsed.text, parsed.finish_reason, parsed.truncated) == expected[1:]
        return
    with pytest.raises(LlmError, match=expected[1]) as caught:
        provider.read(status, headers, body)
    assert caught.value.error_class is expected[0], str(caught.value)
    assert caught.value.retriable is (expected[0] is not ErrorClass.PERMANENT)


@pytest.mark.parametrize("kind", ["openai", "gemini", "ollama"])
def test_error_in_a_200_carries_retry_after(kind: str) -> None:
    body = json.dumps({"error": {"message": "slow down", "code": 429}})
    with pytest.raises(LlmError) as caught:
        client(kind).read(200, {"Retry-After": "7"}, body)
    assert (caught.value.error_class, caught.value.retry_after_s) == (ErrorClass.QUOTA, 7.0)


def test_retry_after_is_kept_for_503_in_seconds_and_as_http_date() -> None:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    with pytest.raises(LlmError) as caught:
        client("openai").read(503, {"Retry-After": "5"}, "busy")
    assert caught.value.retry_after_s == 5.0
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    with pytest.raises(LlmError) as caught:
        client("openai").read(503, {"Retry-After": when}, "busy")
    assert caught.value.retry_after_s is not None and 25.0 < caught.value.retry_after_s <= 30.0
    with pytest.raises(LlmError) as caught:
        client("openai").read(408, {"Retry-After": "3"}, "timeout")
    assert (caught.value.error_class, caught.value.retry_after_s) == (ErrorClass.TIMEOUT, 3.0)
