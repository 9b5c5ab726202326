"""LLM providers behind one interface, chosen by ``QAFLOW_LLM_PROVIDER``.

Each backend is imported only when chosen, so the offline simulator needs no HTTP stack.
"""

from __future__ import annotations

from importlib import import_module

from qaflow.core.errors import ConfigError
from qaflow.core.settings import LlmSettings
from qaflow.llm.base import LlmProvider, LlmReply, LlmRequest

__all__ = ["PROVIDERS", "LlmProvider", "LlmReply", "LlmRequest", "make_provider"]

# name -> (module, class)
PROVIDERS: dict[str, tuple[str, str]] = {
    "offline": ("qaflow.llm.offline", "OfflineSimulator"),
    "gemini": ("qaflow.llm.gemini", "GeminiClient"),
    "ollama": ("qaflow.llm.ollama", "OllamaClient"),
    "openai": ("qaflow.llm.openai", "OpenAiClient"),
}


def make_provider(settings: LlmSettings) -> LlmProvider:
    """The provider ``settings.llm_provider`` names, constructed but not started."""
    try:
        module, cls = PROVIDERS[settings.llm_provider]
    except KeyError:
        msg = f"QAFLOW_LLM_PROVIDER: unknown provider {settings.llm_provider!r}; use one of {sorted(PROVIDERS)}"
        raise ConfigError(msg) from None
    provider: LlmProvider = getattr(import_module(module), cls)(settings)
    return provider
