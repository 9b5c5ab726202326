"""Generated requests against the api under real gunicorn, checked against its own OpenAPI document.

schemathesis derives valid and invalid requests for every operation of ``/openapi.json``
and checks every response: no 5xx, status and body as documented, invalid input refused.
Bounded (``MAX_EXAMPLES`` per operation) so it fits in the services suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.services.test_api_gunicorn import Gunicorn

MAX_EXAMPLES = 30


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    env = {"QAFLOW_BUS_URL": "memory://", "QAFLOW_STORE_URL": f"sqlite:///{Path(tmp) / 'qa.db'}",
           "QAFLOW_CACHE_URL": "memory://"}
    api = Gunicorn("api", env, tmp, "--workers", "1")
    api.start(ready_path="/readyz")
    try:
        yield schemathesis.openapi.from_url(api.url + "/openapi.json")
    finally:
        api.kill()


def test_generated_requests_get_documented_answers(api_schema: Any) -> None:
    # schemathesis' pytest plugin (schema.parametrize) does not load under this pytest; drive
    # Hypothesis directly, one operation at a time.
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 6, operations
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def check(case: Any) -> None:
            case.call_and_validate()

        check()
