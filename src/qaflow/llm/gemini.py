"""Google Gemini through the REST ``generateContent`` method (API key in a header).

A reply is read by :meth:`GeminiClient.parse`; its shapes and their outcomes are listed in
:mod:`qaflow.llm.replies`. A JSON array or a stream of responses is joined in order.
"""

from __future__ import annotations

import logging
from typing import Any

from qaflow.core.errors import PermanentLlmError
from qaflow.llm.base import LlmRequest
from qaflow.llm.http import HttpProvider, malformed, token_count
from qaflow.llm.replies import Parsed, Stream, as_mapping, no_text

logger = logging.getLogger(__name__)

# A candidate that stopped for any other reason carries no usable answer.
OK_FINISH_REASONS = frozenset({"STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"})
BLOCK_REASONS = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"})


class GeminiClient(HttpProvider):
    name = "gemini"

    def build(self, request: LlmRequest) -> tuple[str, dict[str, Any], dict[str, str]]:
        url = f"{self.settings.base_url}/v1beta/models/{self.model}:generateContent"
        payload = {
            "contents": [{"role": "user", "parts": [{"text": request.prompt}]}],
            "generationConfig": {
                "temperature": self.settings.llm_temperature,
                "maxOutputTokens": self.settings.llm_max_tokens,
            },
        }
        return url, payload, {"x-goog-api-key": self.api_key}

    def parse(self, data: Any) -> Parsed:
        responses = data.chunks if isinstance(data, Stream) else tuple(data) if isinstance(data, list) else (data,)
        texts: list[str] = []
        reason: str | None = None
        usage: Any = {}
        seen_candidate = False
        for response in map(as_mapping, responses):
            candidates = response.get("candidates")
            usage = response.get("usageMetadata") or usage
            if not candidates:
                block = as_mapping(response.get("promptFeedback")).get("blockReason")
                if block:
                    msg = f"gemini: prompt blocked ({block}), no candidates"
                    raise PermanentLlmError(msg)
                continue
            seen_candidate = True
            candidate = as_mapping(candidates[0])
            reason = candidate.get("finishReason") or reason
            parts = as_mapping(candidate.get("content")).get("parts") or ()
            texts.extend(str(p.get("text", "")) for p in parts if isinstance(p, dict) and not p.get("thought"))
        if not seen_candidate:
            raise malformed(self.name, "no candidates")
        if reason is not None and reason not in OK_FINISH_REASONS:
            cause = "blocked by the safety filters" if reason in BLOCK_REASONS else "stopped"
            msg = f"gemini: no answer, finishReason {reason} ({cause})"
            raise PermanentLlmError(msg)
        text = "".join(texts)
        if not text.strip():
            raise no_text(self.name, reason)
        usage = as_mapping(usage)
        return Parsed(text, reason, token_count(usage.get("promptTokenCount")),
                      token_count(usage.get("candidatesTokenCount")))
