"""The scorer service's metrics (request counts and latencies come from the shared web module)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PAIRS = Counter("qaflow_scorer_pairs_total", "Candidate/reference pairs scored.")
TRUNCATED = Counter("qaflow_scorer_truncated_texts_total", "Texts cut to QAFLOW_SCORER_MAX_CHARS before scoring.")
BATCH = Histogram(
    "qaflow_scorer_batch_pairs", "Pairs per scoring request.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 10_000),
)
SCORE_SECONDS = Histogram(
    "qaflow_scorer_score_seconds", "Model time per scoring request (waiting for the model lock excluded).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)
LOAD_SECONDS = Histogram(
    "qaflow_scorer_model_load_seconds", "Time to load the model, once per worker process.",
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
