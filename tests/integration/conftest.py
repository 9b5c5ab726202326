"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from qaflow.llm.fake_server import FakeLlmServer


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLlmServer]:
    """The in-process fake LLM server, one per test module; each module resets it per test."""
    with FakeLlmServer() as fake:
        yield fake


@pytest.fixture(scope="module")
def scorer() -> Iterator[Any]:
    """Real BERTScore on MiniLM (CPU, model batches of 8), one per module."""
    from qaflow.core.settings import ScorerSettings
    from qaflow.scoring.bertscore import BertScoreScorer

    s = BertScoreScorer(ScorerSettings(scorer_device="cpu", scorer_batch_size=8))
    s.start()
    yield s
    s.close()
