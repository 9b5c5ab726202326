"""RemoteScorer against a tiny Flask scorer service (LexicalScorer behind it) in a thread."""

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from qaflow.core.errors import ScoringError
from qaflow.core.settings import ScorerSettings
from qaflow.scoring import make_scorer
from qaflow.scoring.lexical import LexicalScorer
from qaflow.scoring.remote import RemoteScorer

# What the fake service does on the next request; reset before every test.
FAULT: dict[str, Any] = {}


def _app() -> Flask:
    app = Flask(__name__)
    lexical = LexicalScorer()

    @app.get("/v1/info")
    def info() -> Any:
        return jsonify(scorer=lexical.identity)

    @app.post("/v1/score")
    def score() -> Any:
        if "sleep" in FAULT:
            time.sleep(FAULT["sleep"])
        if "status" in FAULT:
            return FAULT.get("body", "scorer exploded\n  badly"), FAULT["status"]
        pairs = request.get_json()["pairs"]
        scores = lexical.score([p["candidate"] for p in pairs], [p["reference"] for p in pairs])
        if FAULT.get("drop_one"):
            scores = scores[:-1]
        scores = FAULT.get("scores", scores)
        return jsonify(scores=scores, scorer=FAULT.get("identity", lexical.identity))

    return app


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    server = make_server("127.0.0.1", 0, _app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def scorer(url: str) -> Iterator[RemoteScorer]:
    FAULT.clear()
    s = RemoteScorer(ScorerSettings(scorer="remote", scorer_url=url, scorer_timeout_s=5))
    s.start()
    yield s
    s.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_scores_match_the_scorer_behind_the_service(scorer: RemoteScorer) -> None:
    cands = ["The cat sat on the mat.", "purple elephants", "Paris is the capital of France"]
    refs = ["a cat sat on a mat", "water boils at 100 degrees", "France's capital: Paris"]
    assert scorer.score(cands, refs) == LexicalScorer().score(cands, refs)
    assert scorer.identity == {"name": "lexical", "metric": "token-f1", "version": "2", "tokens": "words+chars"}


def test_factory_builds_remote(url: str) -> None:
    s = make_scorer(ScorerSettings(scorer="remote", scorer_url=url))
    assert isinstance(s, RemoteScorer)
    assert s.base_url == url.rstrip("/")


def test_identity_follows_the_score_reply(scorer: RemoteScorer) -> None:
    FAULT["identity"] = {"name": "bertscore", "model": "m2", "num_layers": 6}
    scorer.score(["a b"], ["a b"])
    assert scorer.identity == {"name": "bertscore", "model": "m2", "num_layers": "6"}


def test_empty_batch_and_length_mismatch(scorer: RemoteScorer) -> None:
    assert scorer.score([], []) == []
    with pytest.raises(ScoringError, match="2 candidates but 1 references"):
        scorer.score(["a", "b"], ["a"])


@pytest.mark.parametrize(("status", "retriable"), [(503, True), (429, True), (400, False), (404, False)])
def test_http_error_carries_status_excerpt_and_retriable(scorer: RemoteScorer, status: int, retriable: bool) -> None:
    FAULT["status"] = status
    with pytest.raises(ScoringError, match=f"HTTP {status}: scorer exploded badly") as info:
        scorer.score(["a"], ["b"])
    assert info.value.retriable is retriable


def test_long_error_body_is_cut(scorer: RemoteScorer) -> None:
    FAULT.update(status=500, body="x" * 5000)
    with pytest.raises(ScoringError) as info:
        scorer.score(["a"], ["b"])
    assert len(str(info.value)) < 400


def test_wrong_number_of_scores_is_not_retriable(scorer: RemoteScorer) -> None:
    FAULT["drop_one"] = True
    with pytest.raises(ScoringError, match="expected 2 finite scores") as info:
        scorer.score(["a", "b"], ["a", "b"])
    assert info.value.retriable is False


def test_an_integer_score_too_large_for_a_float_is_a_permanent_scoring_error(scorer: RemoteScorer) -> None:
    FAULT["scores"] = [0.5, 10**400]  # valid JSON; math.isfinite raises OverflowError on it
    with pytest.raises(ScoringError, match="expected 2 finite scores") as info:
        scorer.score(["a", "b"], ["a", "b"])
    assert info.value.retriable is False


def test_non_json_reply(scorer: RemoteScorer) -> None:
    FAULT.update(status=200, body="<html>proxy page</html>")
    with pytest.raises(ScoringError, match="not JSON: <html>proxy page"):
        scorer.score(["a"], ["b"])


def test_timeout_is_retriable(url: str) -> None:
    FAULT.clear()
    s = RemoteScorer(ScorerSettings(scorer="remote", scorer_url=url, scorer_timeout_s=0.2))
    s.start()
    FAULT["sleep"] = 1.0
    try:
        with pytest.raises(ScoringError, match=r"no reply in 0.2s") as info:
            s.score(["a"], ["b"])
        assert info.value.retriable is True
    finally:
        s.close()
        FAULT.clear()


def test_unreachable_service_fails_at_start() -> None:
    s = RemoteScorer(ScorerSettings(scorer="remote", scorer_url=f"http://127.0.0.1:{_free_port()}"))
    with pytest.raises(ScoringError, match="/v1/info") as info:
        s.start()
    assert info.value.retriable is True
    s.close()


def test_score_before_start_raises(url: str) -> None:
    s = RemoteScorer(ScorerSettings(scorer="remote", scorer_url=url))
    with pytest.raises(ScoringError, match="start"):
        s.score(["a"], ["b"])
    with pytest.raises(ScoringError, match="start"):
        _ = s.identity
