"""Google Gemini through the REST ``generateContent`` method (API key in a header)."""

from __future__ import annotations

import logging
from typing import Any

from qaflow.core.errors import PermanentLlmError
from qaflow.llm.base import LlmRequest
from qaflow.llm.http import HttpProvider, malformed, token_count

logger = logging.getLogger(__name__)

# A candidate that stopped for any other reason carries no usable answer.
OK_FINISH_REASONS = frozenset({"STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"})


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

    def parse(self, data: Any) -> tuple[str, int | None, int | None]:
        candidates = data.get("candidates")
        if not candidates:
            feedback = data.get("promptFeedback") or {}
            reason = feedback.get("blockReason")
            if reason:
                msg = f"gemini: prompt blocked ({reason})"
                raise PermanentLlmError(msg)
            raise malformed(self.name, "no candidates")
        candidate = candidates[0]
        reason = candidate.get("finishReason")
        if reason is not None and reason not in OK_FINISH_REASONS:
            msg = f"gemini: no answer, finishReason {reason}"
            raise PermanentLlmError(msg)
        parts = candidate["content"]["parts"]
        text = "".join(part.get("text", "") for part in parts if isinstance(part, dict))
        usage = data.get("usageMetadata") or {}
        return text, token_count(usage.get("promptTokenCount")), token_count(usage.get("candidatesTokenCount"))
