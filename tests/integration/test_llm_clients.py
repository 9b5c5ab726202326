"""The real HTTP clients against the in-process fake LLM server (no marker: no external server)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from qaflow.cli.fake_llm import fake_llm
from qaflow.core.errors import (
    LlmError,
    LlmTimeoutError,
    OverloadedError,
    PermanentLlmError,
    QuotaExceededError,
)
from qaflow.core.settings import LlmSettings
from qaflow.llm import make_provider
from qaflow.llm.base import LlmRequest
from qaflow.llm.fake_server import FakeLlmServer, Knobs
from qaflow.llm.gemini import GeminiClient
from qaflow.llm.http import HttpProvider, error_for_status, excerpt, parse_retry_after
from qaflow.llm.ollama import OllamaClient
from qaflow.llm.openai import OpenAiClient
from qaflow.llm.prompt import render_prompt

KINDS = ["gemini", "ollama", "openai"]
API_KEY = "sekret-test-key-123"
TITLE = "Why is the sky blue?"
Factory = Callable[..., HttpProvider]


@pytest.fixture
def fake(server: FakeLlmServer) -> FakeLlmServer:
    deadline = time.monotonic() + 5.0
    while server.stats()["in_flight"] and time.monotonic() < deadline:  # stragglers of a timeout test
        time.sleep(0.02)
    server.knobs = Knobs(api_key=API_KEY)
    assert requests.post(server.url + "/_reset", timeout=5).json() == {"reset": True}
    return server


@pytest.fixture
def client(fake: FakeLlmServer) -> Iterator[Factory]:
    made: list[HttpProvider] = []

    def make(kind: str, url: str | None = None, **overrides: Any) -> HttpProvider:
        values: dict[str, Any] = {"llm_provider": kind, "llm_base_url": url or fake.url, "llm_api_key": API_KEY,
                                  "llm_timeout_s": 5.0, "llm_connect_timeout_s": 2.0}
        values.update(overrides)
        provider = make_provider(LlmSettings(**values))
        assert isinstance(provider, HttpProvider)
        provider.start()
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


def _request(generation: int = 1) -> LlmRequest:
    return LlmRequest(question_id="q1", title=TITLE, content="", generation=generation, delivery=1,
                      prompt=render_prompt(TITLE, "", "en"))


def _stats(fake: FakeLlmServer) -> dict[str, Any]:
    stats: dict[str, Any] = requests.get(fake.url + "/_stats", timeout=5).json()
    return stats


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("kind", KINDS)
def test_success_with_text_and_token_counts(client: Factory, fake: FakeLlmServer, kind: str) -> None:
    reply = client(kind).generate(_request())
    assert TITLE in reply.text
    assert reply.provider == kind
    assert reply.model == LlmSettings(llm_provider=kind, llm_api_key="k").model
    assert reply.prompt_tokens == len(_request().prompt.split())
    assert reply.completion_tokens == len(reply.text.split())
    assert reply.latency_ms > 0
    assert _stats(fake)["by_format"] == {kind: 1}


@pytest.mark.parametrize("kind", ["gemini", "openai"])
def test_wrong_api_key_is_permanent_and_never_shown(client: Factory, kind: str) -> None:
    with pytest.raises(PermanentLlmError) as caught:
        client(kind, llm_api_key="wrong-key-456").generate(_request())
    assert caught.value.status in (401, 403)
    assert "wrong-key-456" not in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
def test_429_carries_retry_after(client: Factory, fake: FakeLlmServer, kind: str) -> None:
    fake.knobs = Knobs(rate_429=1.0, retry_after_s=7)
    with pytest.raises(QuotaExceededError) as caught:
        client(kind).generate(_request())
    assert (caught.value.status, caught.value.retry_after_s) == (429, 7.0)


@pytest.mark.parametrize("kind", KINDS)
def test_503_is_overload(client: Factory, fake: FakeLlmServer, kind: str) -> None:
    fake.knobs = Knobs(rate_503=1.0)
    with pytest.raises(OverloadedError) as caught:
        client(kind).generate(_request())
    assert caught.value.status == 503
    assert caught.value.retriable


@pytest.mark.parametrize("kind", KINDS)
def test_slow_answer_is_a_timeout(client: Factory, fake: FakeLlmServer, kind: str) -> None:
    fake.knobs = Knobs(rate_timeout=1.0, timeout_sleep_s=0.6)
    started = time.monotonic()
    with pytest.raises(LlmTimeoutError):
        client(kind, llm_timeout_s=0.2, llm_connect_timeout_s=0.2).generate(_request())
    assert time.monotonic() - started < 0.55


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_reply_is_permanent(client: Factory, fake: FakeLlmServer, kind: str) -> None:
    fake.knobs = Knobs(rate_malformed=1.0)
    with pytest.raises(PermanentLlmError, match="malformed reply"):
        client(kind).generate(_request())


@pytest.mark.parametrize("kind", KINDS)
def test_400_is_permanent(client: Factory, fake: FakeLlmServer, kind: str) -> None:
    fake.knobs = Knobs(rate_400=1.0)
    with pytest.raises(PermanentLlmError) as caught:
        client(kind).generate(_request())
    assert caught.value.status == 400
    assert not caught.value.retriable


@pytest.mark.parametrize("kind", KINDS)
def test_connection_refused_is_overload(client: Factory, kind: str) -> None:
    with pytest.raises(OverloadedError):
        client(kind, url=f"http://127.0.0.1:{_free_port()}").generate(_request())


@pytest.mark.parametrize("kind", KINDS)
def test_rpm_quota_answers_429_once_exceeded(client: Factory, fake: FakeLlmServer, kind: str) -> None:
    fake.knobs = Knobs(rpm=3)
    provider = client(kind)
    for _ in range(3):
        provider.generate(_request())
    with pytest.raises(QuotaExceededError) as caught:
        provider.generate(_request())
    assert caught.value.retry_after_s is not None and 1.0 <= caught.value.retry_after_s <= 60.0
    stats = _stats(fake)
    assert stats["by_status"] == {"200": 3, "429": 1}
    assert stats["faults"] == {"rpm": 1}


def test_gemini_429_body_has_retry_info(fake: FakeLlmServer) -> None:
    fake.knobs = Knobs(rpm=1)
    url = fake.url + "/v1beta/models/m:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert requests.post(url, json=body, timeout=5).status_code == 200
    second = requests.post(url, json=body, timeout=5)
    assert second.status_code == 429
    assert 1 <= int(second.headers["Retry-After"]) <= 60
    detail = second.json()["error"]["details"][0]
    assert detail["@type"].endswith("google.rpc.RetryInfo")
    assert detail["retryDelay"] == second.headers["Retry-After"] + "s"


def test_concurrency_cap_queues_excess_requests(client: Factory, fake: FakeLlmServer) -> None:
    cap = 3
    fake.knobs = Knobs(concurrency=cap, latency_ms=150)
    provider = client("openai")  # one client shared by all threads
    started = time.monotonic()
    with ThreadPoolExecutor(2 * cap) as pool:
        replies = list(pool.map(lambda _: provider.generate(_request()), range(2 * cap)))
    assert len(replies) == 2 * cap
    assert time.monotonic() - started >= 0.29  # two waves of 150 ms
    stats = _stats(fake)
    assert stats["max_concurrent"] == cap
    assert stats["by_status"] == {"200": 2 * cap}


def test_over_capacity_can_reject_with_503(client: Factory, fake: FakeLlmServer) -> None:
    fake.knobs = Knobs(concurrency=1, latency_ms=200, reject_over_capacity=True)
    provider = client("ollama")

    def call(_: int) -> str:
        try:
            provider.generate(_request())
        except LlmError as exc:
            return type(exc).__name__
        return "ok"

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(call, range(4)))
    assert "ok" in outcomes and "OverloadedError" in outcomes
    assert _stats(fake)["max_concurrent"] == 1


def test_fault_draws_repeat_with_the_seed(fake: FakeLlmServer) -> None:
    fake.knobs = Knobs(rate_503=0.5, seed=3)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

    def run() -> list[int]:
        requests.post(fake.url + "/_reset", timeout=5)
        return [requests.post(fake.url + "/api/chat", json=body, timeout=5).status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert {200, 503} == set(first)


def test_unknown_path_and_method(fake: FakeLlmServer) -> None:
    assert requests.get(fake.url + "/nope", timeout=5).status_code == 404
    assert requests.get(fake.url + "/api/chat", timeout=5).status_code == 405
    bad = requests.post(fake.url + "/api/chat", data=b"not json", timeout=5)
    assert bad.status_code == 400


def test_openai_base_url_may_end_with_v1(client: Factory, fake: FakeLlmServer) -> None:
    assert TITLE in client("openai", url=fake.url + "/v1").generate(_request()).text


def test_ollama_seed_changes_with_the_generation_only() -> None:
    ollama = OllamaClient(LlmSettings(llm_provider="ollama", llm_seed=5))
    seeds = [ollama.build(_request(g))[1]["options"]["seed"] for g in (1, 1, 2)]
    assert seeds[0] == seeds[1] != seeds[2]


def test_gemini_safety_block_is_permanent_with_the_reason() -> None:
    gemini = GeminiClient(LlmSettings(llm_provider="gemini", llm_api_key="k"))
    with pytest.raises(PermanentLlmError, match="SAFETY"):
        gemini.parse({"candidates": [{"finishReason": "SAFETY", "index": 0}]})
    with pytest.raises(PermanentLlmError, match="PROHIBITED_CONTENT"):
        gemini.parse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}})
    parsed = gemini.parse({"candidates": [{"content": {"parts": [{"text": "a"}, {"text": "b"}]},
                                           "finishReason": "MAX_TOKENS"}]})
    assert (parsed.text, parsed.finish_reason, parsed.truncated) == ("ab", "MAX_TOKENS", True)


def test_retry_after_forms() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    body = ('{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": ['
            '{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12.5s"}]}}')
    error = error_for_status(429, {}, body, provider="gemini")
    assert isinstance(error, QuotaExceededError) and error.retry_after_s == 12.5


@pytest.mark.parametrize(("status", "error"), [(500, OverloadedError), (502, OverloadedError),
                                               (504, OverloadedError), (529, OverloadedError),
                                               (408, LlmTimeoutError), (404, PermanentLlmError),
                                               (429, QuotaExceededError)])
def test_status_mapping(status: int, error: type[LlmError]) -> None:
    assert type(error_for_status(status, {}, "x", provider="p")) is error


def test_excerpt_is_short_and_hides_secrets() -> None:
    text = excerpt(f"bad key {API_KEY}\n" + "x" * 1000, [API_KEY])
    assert API_KEY not in text and "***" in text and len(text) <= 201


def test_make_provider_picks_each_client() -> None:
    assert isinstance(make_provider(LlmSettings(llm_provider="gemini", llm_api_key="k")), GeminiClient)
    assert isinstance(make_provider(LlmSettings(llm_provider="ollama")), OllamaClient)
    assert isinstance(make_provider(LlmSettings(llm_provider="openai")), OpenAiClient)


def test_cli_help() -> None:
    runner = CliRunner()
    result = runner.invoke(fake_llm, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--latency-ms", "--concurrency", "--rpm", "--rate-429", "--retry-after-s", "--rate-503",
                   "--rate-timeout", "--rate-malformed", "--seed"):
        assert option in result.output
    assert runner.invoke(fake_llm, ["--help"]).exit_code == 0
    assert runner.invoke(fake_llm, ["serve", "--rate-503", "0.7", "--rate-400", "0.7"]).exit_code != 0


def test_cli_serves_until_sigterm() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "qaflow.cli.fake_llm", "serve", "--port", "0",
                             "--latency-ms", "1"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = first.split(" on ")[1].split()[0]
        body = {"model": "m", "messages": [{"role": "user", "content": "Question: hi?"}]}
        assert "hi?" in requests.post(url + "/api/chat", json=body, timeout=5).json()["message"]["content"]
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert "1 requests served" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
