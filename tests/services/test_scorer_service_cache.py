"""The scorer service keeps reference embeddings across requests (issue 13)."""

from __future__ import annotations

import pytest

from qaflow.core.settings import ScorerServiceSettings
from qaflow.services.scorer.app import create_app
from qaflow.services.web.app import runtime

pytestmark = pytest.mark.bertscore


def test_regenerations_in_a_later_request_reuse_the_reference_embedding() -> None:
    pytest.importorskip("bert_score")
    app = create_app(ScorerServiceSettings(scorer="bertscore", scorer_device="cpu", scorer_batch_size=8))
    client = app.test_client()
    refs = ["Rayleigh scattering makes the sky look blue.", "Water boils at 100 degrees Celsius at sea level."]
    try:
        first = client.post("/v1/score", json={"pairs": [
            {"candidate": "The sky is blue because of Rayleigh scattering.", "reference": refs[0]},
            {"candidate": "It boils at a hundred degrees.", "reference": refs[1]}]})
        assert first.status_code == 200, first.get_data(as_text=True)
        cache = runtime(app).scorer().cache
        hits = cache.hits
        again = client.post("/v1/score", json={"pairs": [
            {"candidate": "The sky is blue because of Rayleigh scattering.", "reference": refs[0]},
            {"candidate": "At sea level water boils at 100 degrees.", "reference": refs[1]}]})
        assert again.status_code == 200
        assert cache.hits == hits + 2
        assert again.get_json()["scores"][0] == pytest.approx(first.get_json()["scores"][0], abs=1e-6)
    finally:
        runtime(app).close()
