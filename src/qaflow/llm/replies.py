"""Reading a provider's reply body: what kind of reply it is, before any field is looked up.

Every 2xx body goes through :func:`decode_body` and :func:`error_in_body`; each wire format's
``parse`` (gemini, openai, ollama) then reads the answer or raises. Together they map each
reply shape to an error class or to an answer with its finish reason:

=====================================  =========================================
shape                                  outcome
=====================================  =========================================
empty body                             permanent: "empty body"
HTML (a proxy's or portal's page)      permanent: "an HTML page, not JSON"
NDJSON / SSE stream                    the chunks, joined by the wire format
``{"error": {...}}`` in a 200          by its code: 429/RESOURCE_EXHAUSTED quota,
                                       5xx/UNAVAILABLE/overloaded overload,
                                       408/DEADLINE_EXCEEDED timeout, else permanent
safety block, prompt blocked           permanent, naming the reason
length limit without text              permanent, naming the finish reason
length limit with text                 answer, ``truncated``, finish reason kept
``content: null`` + reasoning          permanent: "only reasoning_content"
=====================================  =========================================

Sources: OpenAI chat completions reference (``finish_reason`` "stop", "length",
"content_filter"); Gemini ``GenerateContentResponse`` (``finishReason``,
``promptFeedback.blockReason``); Ollama API docs (``done_reason``, NDJSON streaming);
OpenRouter and LiteLLM return ``{"error": {"code": 429, ...}}`` with HTTP 200 on some routes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qaflow.core.errors import (
    LlmError,
    LlmTimeoutError,
    OverloadedError,
    PermanentLlmError,
    QuotaExceededError,
)

QUOTA_CODES = frozenset({"429", "RESOURCE_EXHAUSTED", "rate_limit_exceeded", "rate_limit_error"})
OVERLOAD_CODES = frozenset({"500", "502", "503", "504", "529", "UNAVAILABLE", "INTERNAL", "overloaded_error",
                            "server_error", "api_error"})
TIMEOUT_CODES = frozenset({"408", "DEADLINE_EXCEEDED"})
# finish reasons that mean "cut by the output token limit", per wire format
LENGTH_REASONS = frozenset({"length", "MAX_TOKENS", "max_tokens"})


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a wire format's ``parse`` read from a reply."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @property
    def truncated(self) -> bool:
        return self.finish_reason in LENGTH_REASONS


@dataclass(frozen=True, slots=True)
class Stream:
    """A streamed reply (NDJSON lines or server-sent ``data:`` events), decoded chunk by chunk."""

    chunks: tuple[Any, ...]


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def decode_body(text: str, provider: str) -> Any:
    """The decoded JSON of a 2xx body, a :class:`Stream`, or a permanent error naming the shape."""
    body = text.strip()
    if not body:
        msg = f"malformed reply: empty body ({provider})"
        raise PermanentLlmError(msg)
    if body.startswith("<"):
        msg = (f"malformed reply: an HTML page, not JSON (a proxy, a login portal or a wrong base URL?): "
               f"{_short(body)!r} ({provider})")
        raise PermanentLlmError(msg)
    try:
        return json.loads(body)
    except ValueError:
        pass
    chunks = []
    for line in body.splitlines():
        line = line.strip().removeprefix("data:").strip()
        if not line or line == "[DONE]" or line.startswith((":", "event:", "id:")):
            continue
        try:
            chunks.append(json.loads(line))
        except ValueError:
            msg = f"malformed reply: not JSON: {_short(body)!r} ({provider})"
            raise PermanentLlmError(msg) from None
    return Stream(tuple(chunks))


def _error_of(data: Any) -> Any:
    return data.get("error") if isinstance(data, dict) else None


def error_in_body(data: Any, provider: str, retry_after_s: float | None = None) -> LlmError | None:
    """The error an ``{"error": ...}`` object in a 2xx reply stands for, or ``None``.

    The error's ``code`` (a number or Google's status name) or ``type`` picks the class, so
    a proxy that says 429 in the body takes the quota path like a real 429.
    """
    chunks = data.chunks if isinstance(data, Stream) else tuple(data) if isinstance(data, list) else (data,)
    for chunk in chunks:
        error = _error_of(chunk)
        if not error:
            continue
        if isinstance(error, dict):
            message = str(error.get("message") or json.dumps(error))
            keys = {str(error.get(k)) for k in ("code", "status", "type") if error.get(k) is not None}
        else:
            message, keys = str(error), set()
        lowered = message.lower()
        text = f"{provider}: error object in a 2xx reply ({', '.join(sorted(keys)) or 'no code'}): {_short(message)}"
        if keys & QUOTA_CODES or "rate limit" in lowered:
            return QuotaExceededError(text, status=429, retry_after_s=retry_after_s)
        if keys & OVERLOAD_CODES or "overloaded" in lowered:
            return OverloadedError(text, retry_after_s=retry_after_s)
        if keys & TIMEOUT_CODES:
            return LlmTimeoutError(text, retry_after_s=retry_after_s)
        return PermanentLlmError(text)
    return None


def no_text(provider: str, finish_reason: str | None, detail: str = "") -> PermanentLlmError:
    """The error for a reply that ended without answer text, naming why."""
    if finish_reason in LENGTH_REASONS:
        cause = (f"the output token limit was reached before any answer text (finish reason {finish_reason}; "
                 "a thinking model may have spent it all: raise QAFLOW_LLM_MAX_TOKENS)")
    elif finish_reason:
        cause = f"finish reason {finish_reason}"
    else:
        cause = "no finish reason"
    return PermanentLlmError(f"{provider}: no answer text: {cause}{'; ' + detail if detail else ''}")


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
