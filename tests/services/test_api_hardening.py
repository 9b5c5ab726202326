"""Issue 10's smaller api findings: odd query and path values, ``category: 1.0``, the OpenAPI
document against the body limit, an empty API key, and where the HTTP ports bind.

The Flask client checks every response against the app's own OpenAPI document (see
test_api.py), so a new status must also be documented.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from qaflow.core.errors import ConfigError
from qaflow.core.settings import ApiSettings, StorageWriterSettings, load
from qaflow.services.probes import Probes
from qaflow.services.web.gunicorn_hooks import base_config
from tests.services import test_api
from tests.services.test_api import REFERENCE, Client, Env

env = test_api.env  # the same fixtures: embedded backends, and real servers (integration)
client = test_api.client

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 200),
        ("?run_id=", 200),  # empty: every run
        ("?run_id=-1", 200),
        ("?run_id=99999999999999999999999999", 200),
        ("?run_id=%FF%FE", 200),  # not UTF-8: decoded with replacement characters, a run that does not exist
        ("?other=1", 200),  # unknown parameters are ignored
        ("?run_id=" + "r" * 201, 400),
        ("?run_id=" + "r" * 100_000, 400),
        ("?run_id=a%00b", 400),  # PostgreSQL's TEXT refuses NUL
        ("?run_id=a&run_id=b", 400),
        ("?run_id=a&run_id=a", 400),
    ],
)
def test_stats_query_values(client: Client, query: str, status: int) -> None:
    r = client.get("/v1/stats" + query)
    assert r.status_code == status, r.get_data(as_text=True)
    if status == 400:
        assert r.get_json()["field"] == "run_id"


@pytest.mark.parametrize("raw", ["0", "-1", "1" * 31, "1" * 33, "g" * 32, " " + "a" * 31, "a" * 10_000,
                                 quote("a" * 31 + "\x00"), "1e3", "%FF" * 32])
def test_malformed_question_ids_are_400_and_the_document_says_why(client: Client, raw: str) -> None:
    r = client.get(f"/v1/questions/{raw}")
    assert r.status_code == 400 and r.get_json()["field"] == "id"


def test_the_document_states_the_id_pattern_and_the_body_limit(env: Env, client: Client) -> None:
    import re

    doc = client.get("/openapi.json").get_json()
    param = doc["paths"]["/v1/questions/{question_id}"]["get"]["parameters"][0]
    pattern = re.compile(param["schema"]["pattern"])
    assert pattern.search("24E4F681B79E6317055FDDBBADA09F22") and not pattern.search("0")
    post = doc["paths"]["/v1/questions"]["post"]
    limit = post["x-max-body-bytes"]
    assert limit == client.app.config["MAX_CONTENT_LENGTH"]
    assert str(limit) in post["requestBody"]["description"]
    assert "413" in post["responses"] and "408" in post["responses"]


@pytest.mark.parametrize(("category", "status"), [(1.0, 202), (10.0, 202), (1.5, 422), (0.0, 422), (11.0, 422),
                                                  ("1", 422), (True, 422)])
def test_category_counts_whole_numbers_as_integers(env: Env, client: Client, category: object, status: int) -> None:
    title = env.title(f"category {category!r} {type(category).__name__}")
    r = client.post("/v1/questions", json={"title": title, "reference_answer": REFERENCE, "category": category})
    assert r.status_code == status, r.get_data(as_text=True)
    if status == 422:
        assert r.get_json()["field"] == "category"


@pytest.mark.parametrize("key", ["", " ", "\t\n"])
def test_a_blank_api_key_is_a_start_up_error_naming_the_variable(key: str) -> None:
    with pytest.raises(ConfigError, match="QAFLOW_API_KEY"):
        load(ApiSettings, {"QAFLOW_API_KEY": key})


def test_gunicorn_refuses_to_start_with_a_blank_api_key(tmp_path: Path) -> None:
    environ = {"QAFLOW_API_KEY": "", "QAFLOW_STORE_URL": f"sqlite:///{tmp_path / 'qa.db'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [GUNICORN, "--config", "python:qaflow.services.api.gunicorn_conf", "qaflow.services.api.app:create_app()"],
        env=environ, capture_output=True, timeout=60, check=False,
    )
    assert done.returncode != 0
    assert b"QAFLOW_API_KEY" in done.stdout + done.stderr


def test_http_ports_bind_loopback_unless_told() -> None:
    assert base_config(load(ApiSettings, {}), "api")["bind"] == "127.0.0.1:8000"
    told = load(ApiSettings, {"QAFLOW_HTTP_HOST": "0.0.0.0"})  # what the chart renders
    assert base_config(told, "api")["bind"] == "0.0.0.0:8000"
    probes = Probes(0, load(StorageWriterSettings, {}).http_host)
    probes.start()
    try:
        assert probes._server is not None
        assert probes._server.server_address[0] == "127.0.0.1"
        with socket.create_connection(("127.0.0.1", probes.port), timeout=5):
            pass
    finally:
        probes.stop()
    default = Probes(0)
    default.start()
    try:
        assert default._server is not None and default._server.server_address[0] == "127.0.0.1"
    finally:
        default.stop()
