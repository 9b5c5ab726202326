"""`qaflow run` over real Kafka, PostgreSQL and Redis gives the embedded run's counts."""

from __future__ import annotations

import pytest

from tests.integration.test_embedded_run import SAMPLE, run_json

pytestmark = pytest.mark.integration

COUNTS = ("questions", "validated", "exhausted", "failed", "llm_calls", "regeneration_calls", "retry_calls")


def test_real_backends_match_the_embedded_run(
    tmp_path, kafka_bootstrap: str, pg_url: str, redis_url: str, unique_name: str
) -> None:
    env = {  # deterministic faults, so both runs retry the same calls
        "QAFLOW_LLM_SIM_RATE_429": "0.05", "QAFLOW_LLM_SIM_RATE_503": "0.05", "QAFLOW_LLM_SIM_RETRY_AFTER_S": "0.05",
        "QAFLOW_RETRY_OVERLOAD_BASE_S": "0.02", "QAFLOW_RETRY_OVERLOAD_CAP_S": "0.1",
    }
    common = ("--dataset", str(SAMPLE), "--scorer", "lexical", "--threshold", "0.35", "--seed", "7")
    embedded = run_json(*common, "--store", f"sqlite:///{tmp_path / 'q.db'}", env=env)
    real = run_json(
        *common, "--bus", f"kafka://{kafka_bootstrap}", "--store", pg_url, "--cache", redis_url,
        env={**env, "QAFLOW_TOPIC_PREFIX": f"{unique_name}.", "QAFLOW_KAFKA_PARTITIONS": "3"},
    )
    assert {k: real[k] for k in COUNTS} == {k: embedded[k] for k in COUNTS}
    assert real["mean_score_by_generation"] == embedded["mean_score_by_generation"]
    again = run_json(
        *common, "--bus", f"kafka://{kafka_bootstrap}", "--store", pg_url, "--cache", redis_url,
        env={**env, "QAFLOW_TOPIC_PREFIX": f"{unique_name}."},
    )
    assert again["llm_calls"] == 0 and again["cache_hits"] == real["questions"]
