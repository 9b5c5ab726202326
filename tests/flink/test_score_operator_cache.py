"""The Flink job's scoring UDF keeps reference embeddings across Arrow batches (issue 13)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from qaflow.core.settings import ScorerSettings
from qaflow.scoring import packaged_model_dir
from qaflow.scoring.bertscore import LANG, PACKAGED_NUM_LAYERS

pytestmark = pytest.mark.bertscore

bert_score = pytest.importorskip("bert_score")
operators = pytest.importorskip("qaflow.flinkjob.operators")

REFS = ["Rayleigh scattering makes the sky look blue.", "Water boils at 100 degrees Celsius at sea level."]
GEN1 = ["The sky is blue because of Rayleigh scattering.", "It boils at a hundred degrees."]
GEN2 = ["Air molecules scatter blue light more than red light.", "At sea level water boils at 100 °C."]


class Metrics:
    """Just enough of PyFlink's MetricGroup for ScoreBatches.open()."""

    def add_group(self, *_: Any) -> Metrics:
        return self

    def counter(self, _: str) -> Any:
        return type("C", (), {"inc": lambda self, n=1: None})()

    def gauge(self, *_: Any) -> None:
        pass


class Context:
    def get_metric_group(self) -> Metrics:
        return Metrics()


def test_score_udf_reuses_reference_embeddings_and_matches_bert_score() -> None:
    udf = operators.ScoreBatches(ScorerSettings(scorer="bertscore", scorer_device="cpu", scorer_batch_size=8))
    udf.open(Context())
    try:
        first = udf.eval(pd.Series(GEN1), pd.Series(REFS))
        hits = udf.scorer.cache.hits
        second = udf.eval(pd.Series(GEN2), pd.Series(REFS))  # the regenerations: same references
        assert udf.scorer.cache.hits == hits + len(REFS)
    finally:
        udf.close()
    _, _, want = bert_score.score(GEN1 + GEN2, REFS + REFS, model_type=packaged_model_dir(),
                                  num_layers=PACKAGED_NUM_LAYERS, lang=LANG, device="cpu")
    got = list(first["score"]) + list(second["score"])
    assert max(abs(g - w) for g, w in zip(got, want.tolist(), strict=True)) <= 1e-6
