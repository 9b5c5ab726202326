"""The fake LLM server with a data set answers like the offline simulator (issue 14, item 7):
the real OpenAI client against the in-process server, and `qaflow run` over it against
`qaflow run` with the in-process simulator on the same questions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from qaflow.cli.dev import fake_llm_args
from qaflow.cli.main import cli
from qaflow.core.question import Question
from qaflow.core.settings import LlmSettings
from qaflow.datasets import open_dataset
from qaflow.llm import make_provider
from qaflow.llm.base import LlmProvider, LlmRequest
from qaflow.llm.fake_quality import ReferenceBook
from qaflow.llm.fake_server import FakeLlmServer
from qaflow.llm.offline import simulated_answer
from qaflow.llm.prompt import render_prompt

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample.csv"


@pytest.fixture(scope="module")
def questions() -> list[Question]:
    return list(open_dataset(SAMPLE, limit=40))


@pytest.fixture
def fake(questions: list[Question]) -> Iterator[FakeLlmServer]:
    with FakeLlmServer(references=ReferenceBook(questions, seed=7), seed=7) as server:
        yield server


def _request(q: Question, generation: int, language: str = "en") -> LlmRequest:
    prompt = render_prompt(q.title, q.content, language)
    return LlmRequest(q.id, q.title, q.content, generation, 1, prompt, language, q.reference_answer)


def _client(url: str) -> LlmProvider:
    return make_provider(LlmSettings(llm_provider="openai", llm_base_url=url, llm_model="fake"))


def test_the_nth_answer_is_the_simulators_generation_n(fake: FakeLlmServer, questions: list[Question]) -> None:
    client = _client(fake.url)
    client.start()
    try:
        for q in questions[:5]:
            for generation in (1, 2, 3):
                # the server sees only the prompt; the request's generation is what the simulator would use
                reply = client.generate(_request(q, generation))
                assert reply.text == simulated_answer(_request(q, generation), 7)
        other = questions[5]
        assert client.generate(_request(other, 1, "es")).text == simulated_answer(_request(other, 1, "es"), 7)
        unknown = Question("A question nobody put in the data set?", "", "")
        assert client.generate(_request(unknown, 1)).text.startswith('About "A question nobody')
        assert requests.get(f"{fake.url}/_stats", timeout=5).json()["references"] == len(questions)
        requests.post(f"{fake.url}/_reset", timeout=5)
        q = questions[0]
        assert client.generate(_request(q, 1)).text == simulated_answer(_request(q, 1), 7)  # generation 1 again
    finally:
        client.close()


def test_a_faulted_call_does_not_count_as_a_generation(questions: list[Question]) -> None:
    with FakeLlmServer(references=ReferenceBook(questions, seed=0), rate_503=1.0) as server:
        client = _client(server.url)
        client.start()
        try:
            q = questions[0]
            with pytest.raises(Exception, match="overloaded"):
                client.generate(_request(q, 1))
            server.knobs = type(server.knobs)()  # no more faults
            assert client.generate(_request(q, 1)).text == simulated_answer(_request(q, 1), 0)
        finally:
            client.close()


def _run(tmp_path: Path, name: str, env: dict[str, str], *args: str) -> dict[str, object]:
    result = CliRunner().invoke(cli, ["run", "--dataset", str(SAMPLE), "--scorer", "lexical", "--json",
                                      "--store", f"sqlite:///{tmp_path / name}.db", *args], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_qaflow_run_over_the_fake_server_loops_like_the_simulator(tmp_path: Path) -> None:
    """Same questions, same seed, lexical scorer: the same validated/exhausted split, calls and scores."""
    book = ReferenceBook.from_dataset(SAMPLE, seed=0)
    with FakeLlmServer(references=book) as server:
        over_http = _run(tmp_path, "http", {"QAFLOW_LLM_BASE_URL": server.url, "QAFLOW_LLM_MODEL": "fake"},
                         "--llm", "openai")
    offline = _run(tmp_path, "offline", {}, "--llm", "offline", "--seed", "0")
    keys = ("validated", "exhausted", "failed", "llm_calls", "regeneration_calls", "mean_first_score",
            "mean_final_score")
    assert {k: over_http[k] for k in keys} == {k: offline[k] for k in keys}
    assert over_http["regeneration_calls"] > 0 and over_http["validated"] > 0  # the loop shows


def test_dev_up_gives_the_fake_llm_the_data_set(tmp_path: Path) -> None:
    args = fake_llm_args(8099, SAMPLE)
    assert args[args.index("--references") + 1] == str(SAMPLE.resolve())
    assert "--references" not in fake_llm_args(8099, None)
