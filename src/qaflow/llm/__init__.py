"""LLM providers behind one interface, chosen by ``QAFLOW_LLM_PROVIDER``.

The providers are declared in :mod:`qaflow.llm.registry`. Each backend is imported only when
chosen, so the offline simulator needs no HTTP stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qaflow.llm.base import LlmProvider, LlmReply, LlmRequest
from qaflow.llm.registry import FAMILY as PROVIDERS

if TYPE_CHECKING:
    from qaflow.core.settings import LlmSettings

__all__ = ["PROVIDERS", "LlmProvider", "LlmReply", "LlmRequest", "make_provider"]


def make_provider(settings: LlmSettings) -> LlmProvider:
    """The provider ``settings.llm_provider`` names, constructed but not started."""
    provider: LlmProvider = PROVIDERS.load(settings.llm_provider)(settings)
    return provider
