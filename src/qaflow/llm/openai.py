"""The OpenAI chat completions API, as OpenAI, vLLM, llama.cpp and others serve it."""

from __future__ import annotations

import logging
from typing import Any

from qaflow.core.errors import PermanentLlmError
from qaflow.llm.base import LlmRequest
from qaflow.llm.http import HttpProvider, token_count

logger = logging.getLogger(__name__)


class OpenAiClient(HttpProvider):
    name = "openai"

    def build(self, request: LlmRequest) -> tuple[str, dict[str, Any], dict[str, str]]:
        base = self.settings.base_url.removesuffix("/v1")  # both ".../v1" and the bare host work
        payload = {
            "model": self.model,
            "messages": [{"role": "user", "content": request.prompt}],
            "temperature": self.settings.llm_temperature,
            "max_tokens": self.settings.llm_max_tokens,
        }
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return f"{base}/v1/chat/completions", payload, headers

    def parse(self, data: Any) -> tuple[str, int | None, int | None]:
        choice = data["choices"][0]
        if choice.get("finish_reason") == "content_filter":
            msg = "openai: no answer, finish_reason content_filter"
            raise PermanentLlmError(msg)
        usage = data.get("usage") or {}
        return (choice["message"]["content"], token_count(usage.get("prompt_tokens")),
                token_count(usage.get("completion_tokens")))
