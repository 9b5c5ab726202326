"""A standing chaos suite (issue 10, point 6): real Kafka, PostgreSQL and Redis, every service
as a process (``qaflow dev up --services``), questions in flight through the api, one fault
per scenario. Each asserts 0 lost, 0 duplicated and every service alive without a restart by
hand; see :mod:`tests.chaos.harness` for what each figure means.

Scenarios run in the order listed on one shared stack; one that leaves a service dead has it
restarted afterwards (and says so in its row), so the next starts healthy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import save_rows
from .harness import (
    FAULTY_LLM,
    ChaosStack,
    Row,
    Scenario,
    faulty_llm,
    outage,
    probe_api,
    run,
    sigkill,
    slow_clients,
)

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(420)]

KILLED = ("api", "llm-worker", "retry-worker", "score-worker", "storage-writer", "dashboard")
SCENARIOS = [
    *(Scenario(f"sigkill-{name}", sigkill(name), killed=name) for name in KILLED),
    # Outages: questions keep arriving (3/s for 20 s) while the server is down.
    Scenario("postgres-stop-10s", outage("postgres", 10), rate=3.0, during=probe_api()),
    Scenario("redis-stop-20s", outage("redis", 20), rate=3.0, during=probe_api()),
    Scenario("faulty-llm", faulty_llm, llm=FAULTY_LLM, drain_deadline_s=150),
    Scenario("slow-clients-40", lambda stack, notes: None, during=slow_clients(40)),
    Scenario("kafka-stop-10s", outage("kafka", 10), rate=3.0, during=probe_api()),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(scenario: Scenario, chaos_stack: ChaosStack, chaos_rows: list[Row], tmp_path: Path) -> None:
    row = run(chaos_stack, scenario, tmp_path)
    chaos_rows.append(row)
    save_rows(chaos_rows)
    print(f"\n{row.to_dict()}")
    detail = f"{row.to_dict()}\n--- service logs ---\n{chaos_stack.log_tails(15)}"
    assert row.accepted > 0, detail
    assert row.lost == 0, detail
    assert row.duplicated == 0, detail
    assert row.all_alive, detail
    assert not [n for n in row.notes if n.startswith("FAIL")], detail
