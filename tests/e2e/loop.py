"""The flaky loop the live suites run (tests/e2e, tests/observability): a fake LLM answering
10% 429s and 5% 503s (Retry-After 1 s, 30 ms latency, seed 11), the lexical scorer at a
threshold about half the fake answers pass at once (the rest regenerate, then exhaust), and
retry delays cut short so a run of the shipped sample takes about a minute."""

from __future__ import annotations

from qaflow.devstack.catalog import ServiceProcess

from .conftest import ServiceStack

FLAKY_LLM_KNOBS = ("--latency-ms", "30", "--rate-429", "0.10", "--rate-503", "0.05", "--retry-after-s", "1",
                   "--seed", "11")


def start_flaky_llm(stack: ServiceStack, **config: str) -> ServiceProcess:
    """Starts the fake LLM (``FLAKY_LLM_KNOBS``) and sets ``stack.config`` to the loop's QAFLOW_*
    variables, ``config`` added or overriding; returns the fake LLM's process (``.url``)."""
    fake = stack.start_fake_llm(*FLAKY_LLM_KNOBS)
    stack.config = {
        "QAFLOW_LOG_FORMAT": "text",
        "QAFLOW_LLM_PROVIDER": "openai",
        "QAFLOW_LLM_BASE_URL": fake.url,
        "QAFLOW_LLM_CONCURRENCY": "8",
        "QAFLOW_SCORER": "lexical",
        "QAFLOW_THRESHOLD": "0.15",  # about half the fake answers pass at once; the rest regenerate, then exhaust
        "QAFLOW_MAX_GENERATIONS": "2",
        "QAFLOW_RETRY_AFTER_CAP_S": "0.3",  # the fake's Retry-After is 1 s; keep the test short
        "QAFLOW_RETRY_QUOTA_DELAY_S": "0.3",
        "QAFLOW_RETRY_OVERLOAD_BASE_S": "0.1",
        "QAFLOW_RETRY_OVERLOAD_CAP_S": "0.5",
        **config,
    }
    return fake
