"""The LLM providers, one line each: name, client class, default model and URL, what it needs.

Pure data (see :mod:`qaflow.core.plugins`): ``QAFLOW_LLM_PROVIDER`` is checked against these
names, its help text and docs/configuration.md list them, and :func:`qaflow.llm.make_provider`
imports only the chosen client. The first line is the default. Default models and URLs are the
providers' own documented ones: Gemini's REST endpoint (ai.google.dev/api), Ollama's local
port 11434 (docs.ollama.com/api), OpenAI's API host (platform.openai.com/docs/api-reference).
"""

from __future__ import annotations

from qaflow.core.plugins import Family, Plugin

FAMILY = Family("llm_provider", (
    Plugin("offline", "qaflow.llm.offline:OfflineSimulator", "the deterministic simulator",
           default_model="qaflow-offline-simulator"),
    Plugin("gemini", "qaflow.llm.gemini:GeminiClient", "Google Gemini, needs QAFLOW_LLM_API_KEY",
           default_model="gemini-2.5-flash", default_url="https://generativelanguage.googleapis.com",
           requires=("llm_api_key",), start_hint="check the network (and QAFLOW_LLM_BASE_URL)"),
    Plugin("ollama", "qaflow.llm.ollama:OllamaClient", "an Ollama server",
           default_model="llama3.2", default_url="http://localhost:11434",
           start_hint="start it with `ollama serve` (or set QAFLOW_LLM_BASE_URL)"),
    Plugin("openai", "qaflow.llm.openai:OpenAiClient", "any OpenAI-compatible server: OpenAI, vLLM, llama.cpp",
           default_model="gpt-4o-mini", default_url="https://api.openai.com",
           start_hint="start the server (or set QAFLOW_LLM_BASE_URL to where it listens)"),
))
