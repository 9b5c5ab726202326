"""The scorer service: its wire format is the one RemoteScorer speaks, checked over real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from qaflow.core.errors import ConfigError, ScoringError
from qaflow.core.settings import ScorerServiceSettings, ScorerSettings
from qaflow.scoring.lexical import LexicalScorer
from qaflow.scoring.remote import RemoteScorer
from qaflow.services.scorer.app import create_app
from qaflow.services.scorer.model import ScorerRuntime
from qaflow.services.web.app import runtime

PROBLEM = "application/problem+json"
LEXICAL = {"name": "lexical", "metric": "token-f1", "version": "2", "tokens": "words+chars"}


@pytest.fixture
def make_app() -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        app = create_app(ScorerServiceSettings(**{"scorer": "lexical", **overrides}))
        apps.append(app)
        return app

    yield make
    for app in apps:
        runtime(app).close()


@pytest.fixture
def serve() -> Iterator[Callable[[Flask], str]]:
    servers: list[Any] = []

    def start(app: Flask) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def remote(url: str) -> RemoteScorer:
    scorer = RemoteScorer(ScorerSettings(scorer="remote", scorer_url=url, scorer_timeout_s=60))
    scorer.start()
    return scorer


def test_remote_scorer_gets_the_same_scores_as_in_process(make_app: Callable[..., Flask], serve: Any) -> None:
    scorer = remote(serve(make_app()))
    try:
        cands = ["The cat sat on the mat.", "purple elephants", "Paris is the capital of France", ""]
        refs = ["a cat sat on a mat", "water boils at 100 degrees", "France's capital: Paris", "anything"]
        assert scorer.score(cands, refs) == LexicalScorer().score(cands, refs)
        assert scorer.identity == LEXICAL
        assert scorer.score([], []) == []
    finally:
        scorer.close()


def test_too_many_pairs_is_413_and_not_retried(make_app: Callable[..., Flask], serve: Any) -> None:
    scorer = remote(serve(make_app(scorer_max_batch=3)))
    try:
        assert len(scorer.score(["a"] * 3, ["a"] * 3)) == 3
        with pytest.raises(ScoringError, match="HTTP 413") as err:
            scorer.score(["a"] * 4, ["a"] * 4)
        assert err.value.retriable is False
    finally:
        scorer.close()


def test_long_texts_are_truncated_to_max_chars(make_app: Callable[..., Flask]) -> None:
    client = make_app(scorer_max_chars=16).test_client()
    # Past 16 characters the candidate differs from the reference; truncated, they are equal.
    pair = {"candidate": "alpha beta gamma" + " zeta" * 50, "reference": "alpha beta gamma" + " omega" * 50}
    r = client.post("/v1/score", json={"pairs": [pair]})
    assert r.status_code == 200 and r.get_json()["scores"] == [1.0]
    assert "qaflow_scorer_truncated_texts_total" in client.get("/metrics").get_data(as_text=True)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"pairs": [{"candidate": "a"}]}, 422, "pairs[0].reference"),
        ({"pairs": [{"candidate": 1, "reference": "b"}]}, 422, "pairs[0].candidate"),
        ({"pairs": [{"candidate": "a", "reference": "b"}, "x"]}, 422, "pairs[1]"),
        ({"pairs": [{"candidate": "a", "reference": "b", "score": 1}]}, 422, "pairs[0].score"),
        ({"pairs": {"candidate": "a", "reference": "b"}}, 422, "pairs"),
        ({"pair": []}, 422, "pair"),
        ([], 422, "body"),
        ({"pairs": [{"candidate": "a", "reference": "b"}] * 5}, 413, "pairs"),
    ],
)
def test_bad_shapes_are_named(make_app: Callable[..., Flask], body: Any, status: int, field: str) -> None:
    r = make_app(scorer_max_batch=4).test_client().post("/v1/score", json=body)
    assert r.status_code == status and r.content_type == PROBLEM
    assert r.get_json()["field"] == field and field in r.get_json()["detail"]


def test_transport_errors_are_json(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    cases = [
        (client.post("/v1/score", data=b"{", content_type="application/json"), 400),
        (client.post("/v1/score", data=b'{"pairs": ["\xff"]}', content_type="application/json"), 400),
        (client.post("/v1/score", data=b'{"pairs": []}', content_type="text/plain"), 415),
        (client.get("/v1/score"), 405),
        (client.get("/v2/score"), 404),
    ]
    for r, status in cases:
        assert r.status_code == status and r.content_type == PROBLEM


def test_body_limit_follows_batch_and_text_limits(make_app: Callable[..., Flask]) -> None:
    client = make_app(scorer_max_batch=1, scorer_max_chars=16).test_client()
    huge = {"pairs": [{"candidate": "x" * 2_000_000, "reference": "y"}]}
    assert client.post("/v1/score", json=huge).status_code == 413


def test_not_ready_until_the_model_is_loaded(make_app: Callable[..., Flask]) -> None:
    release = threading.Event()

    class SlowScorer(LexicalScorer):
        def start(self) -> None:
            assert release.wait(10)

    app = make_app()
    app.extensions["qaflow"] = model = ScorerRuntime(app.extensions["qaflow"].settings, lambda s: SlowScorer())
    client = app.test_client()
    first = client.get("/readyz")
    assert first.status_code == 503 and first.get_json()["checks"] == {"model": "loading"}
    assert client.get("/healthz").status_code == 200  # alive while loading
    release.set()
    model.scorer()  # waits for the background load
    assert client.get("/readyz").status_code == 200
    assert client.get("/v1/info").get_json() == {"scorer": LEXICAL}


def test_a_model_that_cannot_load_is_503_and_retriable(make_app: Callable[..., Flask], serve: Any) -> None:
    app = make_app(scorer="bertscore", scorer_model="/nonexistent/model-dir")
    url = serve(app)
    client = app.test_client()
    r = client.post("/v1/score", json={"pairs": [{"candidate": "a", "reference": "b"}]})
    assert r.status_code == 503 and r.content_type == PROBLEM and "not a directory" in r.get_json()["detail"]
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "not a directory" in ready.get_json()["checks"]["model"]
    scorer = RemoteScorer(ScorerSettings(scorer="remote", scorer_url=url))
    with pytest.raises(ScoringError) as err:
        scorer.start()
    assert err.value.retriable is True
    scorer.close()


def test_the_service_refuses_to_be_remote_itself() -> None:
    with pytest.raises(ConfigError, match="QAFLOW_SCORER=remote"):
        create_app(ScorerServiceSettings(scorer="remote", scorer_url="http://elsewhere"))


def test_metrics(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    client.post("/v1/score", json={"pairs": [{"candidate": "a b", "reference": "a b"}] * 3})
    text = client.get("/metrics").get_data(as_text=True)
    for name in ("qaflow_scorer_pairs_total", "qaflow_scorer_batch_pairs_bucket", "qaflow_scorer_score_seconds_count",
                 "qaflow_scorer_model_load_seconds_count", 'qaflow_http_requests_total{endpoint="/v1/score"'):
        assert name in text


@pytest.mark.bertscore
def test_real_bertscore_through_remote_scorer(make_app: Callable[..., Flask], serve: Any) -> None:
    pytest.importorskip("bert_score")
    from qaflow.scoring import packaged_model_dir

    if packaged_model_dir() is None:
        pytest.skip("the packaged all-MiniLM-L6-v2 is not installed")
    scorer = remote(serve(make_app(scorer="bertscore", scorer_device="cpu", scorer_batch_size=8)))
    try:
        refs = ["Rayleigh scattering makes the sky look blue.", "Water boils at 100 degrees Celsius at sea level."]
        cands = ["The sky is blue because of Rayleigh scattering.", "My favourite football team lost again."]
        close, far = scorer.score(cands, refs)
        assert 0 < far < close <= 1
        assert scorer.identity["name"] == "bertscore"
        assert scorer.identity["model"] == "sentence-transformers/all-MiniLM-L6-v2"
        assert scorer.score([cands[0], ""], [refs[0], refs[1]])[1] == 0.0
    finally:
        scorer.close()
