from __future__ import annotations

import re
import statistics
import time
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qaflow.core.errors import (
    LlmError,
    LlmTimeoutError,
    OverloadedError,
    PermanentLlmError,
    QuotaExceededError,
)
from qaflow.core.ids import question_id
from qaflow.core.settings import LlmSettings
from qaflow.llm import make_provider
from qaflow.llm.base import LlmRequest
from qaflow.llm.offline import HIGH, LOW, MODEL, OfflineSimulator, fault_kind, quality

REFERENCE = (
    "Drink plenty of water and get as much rest as you can. A common cold usually lasts about "
    "a week whatever you do. Honey in warm tea soothes a sore throat. If the fever stays above "
    "39 degrees for more than three days, see a doctor. Antibiotics do not help against viruses."
)
TITLE = "How do I get over a cold quickly?"


def _request(qid: str, generation: int = 1, delivery: int = 1, **kw: str) -> LlmRequest:
    fields = {"title": TITLE, "content": "", "prompt": "Question: " + TITLE, "reference_answer": REFERENCE}
    fields.update(kw)
    return LlmRequest(question_id=qid, generation=generation, delivery=delivery, **fields)


def _ids(n: int) -> list[str]:
    return [question_id(f"question {i}") for i in range(n)]


def _token_f1(candidate: str, reference: str) -> float:
    cand, ref = Counter(re.findall(r"\w+", candidate.lower())), Counter(re.findall(r"\w+", reference.lower()))
    common = sum((cand & ref).values())
    if not common:
        return 0.0
    precision, recall = common / sum(cand.values()), common / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


@settings(max_examples=60, deadline=None)
@given(qid=st.text(min_size=1, max_size=40), generation=st.integers(1, 20), seed=st.integers(-(2**40), 2**40),
       delivery=st.integers(1, 10), language=st.sampled_from(["en", "es"]))
def test_same_question_generation_and_seed_give_the_same_answer(
    qid: str, generation: int, seed: int, delivery: int, language: str
) -> None:
    a = OfflineSimulator(LlmSettings(llm_seed=seed)).generate(_request(qid, generation, 1, language=language))
    b = OfflineSimulator(LlmSettings(llm_seed=seed)).generate(_request(qid, generation, delivery,
                                                                      language=language))
    assert a.text.encode() == b.text.encode()
    assert a.text.strip()
    assert 0.0 <= quality(qid, generation, seed) <= 1.0


def test_seed_and_generation_change_the_answer() -> None:
    qids = _ids(20)
    gen1 = [OfflineSimulator(LlmSettings(llm_seed=0)).generate(_request(q)).text for q in qids]
    gen2 = [OfflineSimulator(LlmSettings(llm_seed=0)).generate(_request(q, 2)).text for q in qids]
    seed1 = [OfflineSimulator(LlmSettings(llm_seed=1)).generate(_request(q)).text for q in qids]
    assert sum(a != b for a, b in zip(gen1, gen2, strict=True)) >= 15
    assert sum(a != b for a, b in zip(gen1, seed1, strict=True)) >= 15


def test_reply_is_labelled_and_counts_tokens() -> None:
    reply = OfflineSimulator(LlmSettings()).generate(_request("q1"))
    assert (reply.provider, reply.model) == ("offline", MODEL)
    assert reply.prompt_tokens == len(("Question: " + TITLE).split())
    assert reply.completion_tokens == len(reply.text.split())
    assert reply.latency_ms >= 0


def test_quality_has_a_real_spread_and_regeneration_pays_off() -> None:
    qids = _ids(200)
    first = [quality(q, 1, 0) for q in qids]
    best_of_3 = [max(quality(q, g, 0) for g in (1, 2, 3)) for q in qids]
    assert statistics.pstdev(first) > 0.2
    assert sum(q < LOW for q in first) >= 40 and sum(q >= HIGH for q in first) >= 40
    assert statistics.mean(best_of_3) > statistics.mean(first) + 0.15
    # the drift: a later generation is better on average, not only the maximum of three
    assert statistics.mean(quality(q, 3, 0) for q in qids) > statistics.mean(first) + 0.05


def test_answer_overlap_with_the_reference_follows_quality() -> None:
    sim = OfflineSimulator(LlmSettings())
    bands: dict[str, list[float]] = {"low": [], "mid": [], "high": []}
    for qid in _ids(200):
        q = quality(qid, 1, 0)
        band = "low" if q < LOW else "high" if q >= HIGH else "mid"
        text = sim.generate(_request(qid)).text
        assert text != REFERENCE  # a paraphrase at best, never a copy
        bands[band].append(_token_f1(text, REFERENCE))
    low, mid, high = (statistics.mean(bands[b]) for b in ("low", "mid", "high"))
    assert low + 0.15 < mid < high - 0.1, (low, mid, high)
    assert high > 0.75


def test_spanish_answers_use_spanish_filler() -> None:
    sim = OfflineSimulator(LlmSettings())
    low = next(q for q in _ids(100) if quality(q, 1, 0) < LOW)
    text = sim.generate(_request(low, language="es", title="¿Cómo curar un resfriado rápido?")).text
    assert re.search(r"\b(depende|pregunta|suerte|persona|respuesta|opinión)\b", text, re.I), text
    assert not re.search(r"\b(the|depends|luck)\b", text, re.I), text


def test_empty_reference_still_answers() -> None:
    sim = OfflineSimulator(LlmSettings())
    for qid in _ids(30):
        assert sim.generate(_request(qid, reference_answer="")).text.strip()


def test_fault_rates_are_roughly_honoured() -> None:
    s = LlmSettings(llm_sim_rate_429=0.1, llm_sim_rate_503=0.15, llm_sim_rate_timeout=0.05,
                    llm_sim_rate_malformed=0.1)
    n = 4000
    counts = Counter(fault_kind(s, f"q{i}", 1 + i % 3, 1 + i % 4) for i in range(n))
    for kind, rate in (("429", 0.1), ("503", 0.15), ("timeout", 0.05), ("malformed", 0.1), (None, 0.6)):
        assert abs(counts[kind] / n - rate) < 0.03, (kind, counts)


def test_no_faults_by_default() -> None:
    assert all(fault_kind(LlmSettings(), f"q{i}", 1, 1) is None for i in range(500))


@pytest.mark.parametrize(
    ("rates", "error", "status", "retry_after"),
    [
        ({"llm_sim_rate_429": 1.0}, QuotaExceededError, 429, 7.0),
        ({"llm_sim_rate_503": 1.0}, OverloadedError, 503, None),
        ({"llm_sim_rate_timeout": 1.0}, LlmTimeoutError, None, None),
        ({"llm_sim_rate_malformed": 1.0}, PermanentLlmError, None, None),
    ],
)
def test_each_fault_raises_its_error_class(
    rates: dict[str, float], error: type[LlmError], status: int | None, retry_after: float | None
) -> None:
    sim = OfflineSimulator(LlmSettings(llm_sim_retry_after_s=7.0, **rates))
    with pytest.raises(error) as caught:
        sim.generate(_request("q1"))
    assert type(caught.value) is error
    assert caught.value.status == status
    assert caught.value.retry_after_s == retry_after
    assert caught.value.retriable is (error is not PermanentLlmError)


def test_timeout_waits_no_longer_than_the_read_timeout() -> None:
    sim = OfflineSimulator(LlmSettings(llm_sim_rate_timeout=1.0, llm_sim_latency_ms=2000,
                                       llm_timeout_s=0.05, llm_connect_timeout_s=0.05))
    started = time.monotonic()
    with pytest.raises(LlmTimeoutError):
        sim.generate(_request("q1"))
    assert 0.05 <= time.monotonic() - started < 1.0


def test_latency_is_simulated() -> None:
    reply = OfflineSimulator(LlmSettings(llm_sim_latency_ms=30)).generate(_request("q1"))
    assert reply.latency_ms >= 30


def test_a_retry_gets_a_fresh_draw_and_eventually_succeeds() -> None:
    s = LlmSettings(llm_sim_rate_429=0.2, llm_sim_rate_503=0.2, llm_sim_rate_timeout=0.1,
                    llm_sim_rate_malformed=0.1)
    sim, clean = OfflineSimulator(s), OfflineSimulator(LlmSettings())
    first_failed = 0
    for qid in _ids(100):
        for delivery in range(1, 30):
            try:
                reply = sim.generate(_request(qid, 1, delivery))
            except LlmError:
                first_failed += delivery == 1
                continue
            assert reply.text == clean.generate(_request(qid)).text  # delivery never changes the answer
            break
        else:
            pytest.fail(f"{qid} never succeeded")
    assert 45 <= first_failed <= 75


def test_make_provider_picks_the_simulator() -> None:
    provider = make_provider(LlmSettings(llm_provider="offline"))
    assert isinstance(provider, OfflineSimulator)
    assert provider.name == "offline"
