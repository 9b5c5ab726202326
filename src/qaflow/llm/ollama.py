"""Ollama's native chat API (``/api/chat``, asked not to stream).

A reply is read by :meth:`OllamaClient.parse`; an NDJSON stream (a proxy or an old server
that streams anyway) is joined chunk by chunk. Shapes and outcomes: :mod:`qaflow.llm.replies`.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from qaflow.llm.base import LlmRequest
from qaflow.llm.http import HttpProvider, malformed, token_count
from qaflow.llm.replies import Parsed, Stream, as_mapping, no_text

logger = logging.getLogger(__name__)


def call_seed(seed: int, question_id: str, generation: int) -> int:
    """A seed per (question, generation): a retried call repeats its answer, while a
    regeneration gets a new one (one fixed seed would return the same answer again)."""
    digest = hashlib.sha256(f"{seed}\x1f{question_id}\x1f{generation}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class OllamaClient(HttpProvider):
    name = "ollama"

    def build(self, request: LlmRequest) -> tuple[str, dict[str, Any], dict[str, str]]:
        payload = {
            "model": self.model,
            "messages": [{"role": "user", "content": request.prompt}],
            "stream": False,
            "options": {
                "temperature": self.settings.llm_temperature,
                "num_predict": self.settings.llm_max_tokens,
                "seed": call_seed(self.settings.llm_seed, request.question_id, request.generation),
            },
        }
        return f"{self.settings.base_url}/api/chat", payload, {}

    def parse(self, data: Any) -> Parsed:
        chunks = data.chunks if isinstance(data, Stream) else (data,)
        texts: list[str] = []
        thinking = 0
        reason: str | None = None
        last: Any = {}
        seen_message = False
        for chunk in map(as_mapping, chunks):
            message = chunk.get("message")
            if isinstance(message, dict):
                seen_message = True
                content = message.get("content")
                if isinstance(content, str):
                    texts.append(content)
                thinking += len(str(message.get("thinking") or ""))
            reason = chunk.get("done_reason") or reason
            if chunk.get("done"):
                last = chunk
        if not seen_message:
            raise malformed(self.name, "no message")
        text = "".join(texts)
        if not text.strip():
            detail = f"the reply holds only thinking ({thinking} characters)" if thinking else ""
            raise no_text(self.name, reason, detail)
        return Parsed(text, reason, token_count(last.get("prompt_eval_count")), token_count(last.get("eval_count")))
