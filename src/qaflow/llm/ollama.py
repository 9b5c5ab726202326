"""Ollama's native chat API (``/api/chat``, not streamed)."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from qaflow.llm.base import LlmRequest
from qaflow.llm.http import HttpProvider, token_count

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

    def parse(self, data: Any) -> tuple[str, int | None, int | None]:
        text = data["message"]["content"]
        return text, token_count(data.get("prompt_eval_count")), token_count(data.get("eval_count"))
