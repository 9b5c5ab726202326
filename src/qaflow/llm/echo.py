"""A fake sixth provider for the registry demonstration: answers with the question's title."""

from __future__ import annotations

from qaflow.core.settings import LlmSettings
from qaflow.llm.base import LlmReply, LlmRequest


class EchoProvider:
    name = "echo"

    def __init__(self, settings: LlmSettings) -> None:
        self.model = settings.model

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def generate(self, request: LlmRequest) -> LlmReply:
        return LlmReply(text=request.title, model=self.model, provider=self.name, latency_ms=0.0)
