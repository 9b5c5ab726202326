"""The one interface every LLM provider implements.

Two-phase life: the constructor only stores settings; ``start()`` opens sessions.
``generate`` returns an :class:`LlmReply` or raises an :class:`~qaflow.core.errors.LlmError`
subclass whose ``error_class`` picks the retry path (quota, overload, timeout, permanent).
Providers must be safe to call from several threads at once (the llm-worker runs N calls
in flight per process).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class LlmRequest:
    question_id: str
    title: str
    content: str
    generation: int  # 1 for the first answer, 2+ for regenerations
    delivery: int  # 1 for the first try of this generation
    prompt: str  # rendered by qaflow.llm.prompt
    language: str = "en"
    reference_answer: str = ""  # only the offline simulator looks at it


@dataclass(frozen=True, slots=True)
class LlmReply:
    text: str
    model: str
    provider: str
    latency_ms: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None  # as the provider said it ("stop", "length", "MAX_TOKENS")
    truncated: bool = False  # the provider cut the answer at its output token limit


class LlmProvider(Protocol):
    name: str

    def start(self) -> None: ...

    def generate(self, request: LlmRequest) -> LlmReply: ...

    def close(self) -> None: ...
