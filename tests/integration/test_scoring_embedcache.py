"""Cached, length-bucketed BERTScore equals plain bert-score on the real MiniLM model (issue 13)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from qaflow.scoring import packaged_model_dir
from qaflow.scoring.bertscore import LANG, PACKAGED_NUM_LAYERS, BertScoreScorer

pytestmark = pytest.mark.bertscore

bert_score = pytest.importorskip("bert_score")
embedcache = pytest.importorskip("qaflow.scoring.embedcache")

TOL = 1e-6
SENTENCES = [
    "Sunlight is scattered by the molecules of the air, and blue light is scattered the most.",
    "Hold your breath for about ten seconds, or drink a glass of cold water slowly.",
    "Bacteria are living cells that reproduce on their own, while viruses need a host cell.",
    "Water a cactus every two weeks in summer and let the soil dry out completely in between.",
    "Antibiotics kill many bacteria but have no effect at all on viral infections.",
    "If the problem lasts for more than two days, you should see a doctor.",
    "The French Revolution began in 1789 with the storming of the Bastille.",
    "Mount Everest is the highest mountain on Earth, at almost 8,849 metres above sea level.",
    "Le ciel est bleu à cause de la diffusion de Rayleigh ; 空は青い。",
    "Yes.",
]


def _pairs() -> tuple[list[str], list[str]]:
    """Questions answered 1-3 times (regenerations share the reference), texts of mixed length."""
    cands, refs = [], []
    for q in range(12):
        ref = " ".join(SENTENCES[(q + k) % len(SENTENCES)] for k in range(1 + q % 4))
        for gen in range(1 + q % 3):
            cands.append(" ".join(SENTENCES[(q * 3 + gen + k) % len(SENTENCES)] for k in range(1 + (q + gen) % 5)))
            refs.append(ref)
    cands.append(refs[0])  # candidate identical to a reference
    refs.append(refs[0])
    return cands, refs


def _plain(**kwargs: Any) -> Any:
    """A bert_score.BERTScorer configured as qaflow configures it (scoring/bertscore.py)."""
    return bert_score.BERTScorer(
        model_type=packaged_model_dir(), num_layers=PACKAGED_NUM_LAYERS, lang=LANG, device="cpu", **kwargs
    )


@pytest.fixture(scope="module")
def plain() -> Any:
    return _plain(idf=False, rescale_with_baseline=False)


def _assert_close(got: Any, want: Any) -> None:
    diff = (got - want).abs().max().item()
    assert diff <= TOL, f"max difference {diff:.3g} > {TOL}"


def test_qaflow_scorer_equals_bert_score_score_in_one_call(scorer: BertScoreScorer) -> None:
    """In 8-pair chunks, as the score stage calls it, with a warm cache: same F1 as one bert_score.score."""
    import torch

    cands, refs = _pairs()
    _, _, want = bert_score.score(
        cands, refs, model_type=packaged_model_dir(), num_layers=PACKAGED_NUM_LAYERS, lang=LANG, device="cpu",
        idf=False, rescale_with_baseline=False, batch_size=64,
    )
    for _ in range(2):  # the second pass reads every reference from the cache
        got = []
        for start in range(0, len(cands), 8):
            got += scorer.score(cands[start : start + 8], refs[start : start + 8])
        _assert_close(torch.tensor(got), want)


@pytest.mark.parametrize("batch_size", [1, 5, 64])
def test_score_pairs_equals_bertscorer_p_r_f(plain: Any, batch_size: int) -> None:
    cands, refs = _pairs()
    p, r, f = plain.score(cands, refs, batch_size=batch_size)
    cache = embedcache.EmbeddingCache()
    got = embedcache.score_pairs(plain, cands, refs, batch_size, cache)
    _assert_close(got[:, 0], p)
    _assert_close(got[:, 1], r)
    _assert_close(got[:, 2], f)


def test_score_pairs_with_idf_and_baseline_rescaling(tmp_path: Path) -> None:
    """The idf weights and the baseline rescaling of BERTScorer are applied the same way."""
    baseline = Path(bert_score.__file__).parent / "rescale_baseline" / "en" / "bert-base-uncased.tsv"
    shutil.copy(baseline, tmp_path / "baseline.tsv")
    cands, refs = _pairs()
    plain = _plain(idf=True, idf_sents=refs, rescale_with_baseline=True, baseline_path=str(tmp_path / "baseline.tsv"))
    p, r, f = plain.score(cands, refs, batch_size=16)
    got = embedcache.score_pairs(plain, cands, refs, 16, embedcache.EmbeddingCache())
    assert (got[:, 2] - f).abs().max().item() <= TOL
    assert (got[:, 0] - p).abs().max().item() <= TOL
    assert (got[:, 1] - r).abs().max().item() <= TOL
    assert (f - _plain(idf=False).score(cands, refs)[2]).abs().max().item() > 0.01  # the settings did matter


def test_each_reference_is_embedded_once_across_calls(plain: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cands, refs = _pairs()
    embedded: list[str] = []
    real = embedcache.embed

    def counting(texts: list[str], *args: Any) -> Any:
        embedded.extend(texts)
        return real(texts, *args)

    monkeypatch.setattr(embedcache, "embed", counting)
    cache = embedcache.EmbeddingCache()
    for start in range(0, len(cands), 4):
        embedcache.score_pairs(plain, cands[start : start + 4], refs[start : start + 4], 64, cache)
    ref_texts = [t for t in embedded if t in set(refs) and t not in set(cands)]
    assert sorted(ref_texts) == sorted(set(refs) - set(cands))  # each exactly once
    assert cache.hits > 0


def test_scorer_keeps_references_in_its_cache(scorer: BertScoreScorer) -> None:
    cands, refs = _pairs()
    scorer.score(cands[:3], refs[:3])
    hits = scorer.cache.hits
    scorer.score(cands[3:6], refs[:3])
    assert scorer.cache.hits >= hits + len(set(refs[:3]))


def test_cache_is_bounded_and_least_recently_used_goes_first(plain: Any) -> None:
    emb = embedcache.embed(["one two", "three four", "five six"], plain, embedcache.idf_weights(plain), 8)
    one = embedcache._nbytes(emb["one two"])
    cache = embedcache.EmbeddingCache(max_bytes=2 * one)
    cache.put("a", emb["one two"])
    cache.put("b", emb["three four"])
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", emb["five six"])
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None
    assert len(cache) == 2
    assert cache.bytes <= cache.max_bytes


def test_length_buckets_bound_padding_and_batch_size() -> None:
    lengths = [130, 128, 120, 111, 100, 64, 60, 59, 58, 57, 20, 19, 18, 5]
    ids = {f"t{i}": [0] * n for i, n in enumerate(lengths)}
    batches = embedcache.length_buckets(ids, 3)
    assert sorted(t for b in batches for t in b) == sorted(ids)
    for batch in batches:
        assert len(batch) <= 3
        longest = len(ids[batch[0]])
        assert all(len(ids[t]) >= embedcache.MIN_FILL * longest for t in batch)
    flat = [len(ids[t]) for b in batches for t in b]
    assert flat == sorted(flat, reverse=True)
