"""`qaflow run` in process starts loading the scorer model before the first LLM answer (issue 13)."""

from __future__ import annotations

from qaflow.core.question import Question
from qaflow.core.settings import EmbeddedSettings
from qaflow.llm.base import LlmReply, LlmRequest
from qaflow.pipeline.embedded import EmbeddedPipeline
from tests.unit.test_scoring_lazy import WAIT_S, SlowStart


class RecordingProvider:
    """Answers every question with its reference; blocks its first answer until the scorer loads."""

    name = "recording"

    def __init__(self, scorer: SlowStart) -> None:
        self.scorer = scorer
        self.loading_when_first_called: bool | None = None

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def generate(self, request: LlmRequest) -> LlmReply:
        if self.loading_when_first_called is None:
            self.loading_when_first_called = self.scorer.entered.wait(WAIT_S)
            self.scorer.release.set()
        return LlmReply(text=request.reference_answer, model="m", provider=self.name, latency_ms=1.0)


def test_embedded_run_loads_the_model_while_the_llm_answers() -> None:
    inner = SlowStart()
    provider = RecordingProvider(inner)
    settings = EmbeddedSettings(scorer="lexical", store_url="sqlite:///:memory:", bus_url="memory://",
                                cache_url="memory://", llm_concurrency=1)
    pipeline = EmbeddedPipeline(settings, provider=provider, scorer=inner)  # type: ignore[arg-type]
    try:
        summary = pipeline.run([Question(title=f"q{i}", content="", reference_answer="same words") for i in range(3)])
    finally:
        pipeline.close()
    assert provider.loading_when_first_called is True  # the model was loading before the first answer
    assert inner.starts == ["scorer-preload"]
    assert summary.validated == 3
