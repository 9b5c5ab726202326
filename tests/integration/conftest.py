"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qaflow.llm.fake_server import FakeLlmServer


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLlmServer]:
    """The in-process fake LLM server, one per test module; each module resets it per test."""
    with FakeLlmServer() as fake:
        yield fake
