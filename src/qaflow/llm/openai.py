"""The OpenAI chat completions API, as OpenAI, vLLM, llama.cpp and others serve it.

A reply is read by :meth:`OpenAiClient.parse`, whole or streamed (``delta`` chunks); its
shapes and their outcomes are listed in :mod:`qaflow.llm.replies`.
"""

from __future__ import annotations

import logging
from typing import Any

from qaflow.core.errors import PermanentLlmError
from qaflow.llm.base import LlmRequest
from qaflow.llm.http import HttpProvider, malformed, token_count
from qaflow.llm.replies import Parsed, Stream, as_mapping, no_text

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

    def parse(self, data: Any) -> Parsed:
        chunks = data.chunks if isinstance(data, Stream) else (data,)
        texts: list[str] = []
        reasoning = 0
        finish: str | None = None
        refusal = ""
        usage: Any = {}
        seen_choice = False
        for chunk in map(as_mapping, chunks):
            usage = chunk.get("usage") or usage
            choices = chunk.get("choices")
            if not choices:
                continue
            seen_choice = True
            choice = as_mapping(choices[0])
            message = as_mapping(choice.get("message") or choice.get("delta"))
            content = message.get("content")
            if isinstance(content, list):  # content parts
                content = "".join(str(as_mapping(p).get("text", "")) for p in content)
            if isinstance(content, str):
                texts.append(content)
            reasoning += len(str(message.get("reasoning_content") or message.get("reasoning") or ""))
            refusal += str(message.get("refusal") or "")
            finish = choice.get("finish_reason") or finish
        if not seen_choice:
            raise malformed(self.name, "no choices")
        if finish == "content_filter":
            msg = "openai: no answer, finish_reason content_filter (blocked by the content filter)"
            raise PermanentLlmError(msg)
        text = "".join(texts)
        if not text.strip():
            if refusal:
                msg = f"openai: the model refused: {refusal[:200]}"
                raise PermanentLlmError(msg)
            if reasoning:
                detail = (f"content is null and the reply holds only reasoning_content ({reasoning} characters): "
                          "the model spent its output on reasoning")
                raise no_text(self.name, finish, detail)
            raise no_text(self.name, finish)
        usage = as_mapping(usage)
        return Parsed(text, finish, token_count(usage.get("prompt_tokens")),
                      token_count(usage.get("completion_tokens")))
