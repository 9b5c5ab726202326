"""BERTScore of many pairs with each reference embedded once: bert-score's own pieces, reordered.

``BERTScorer.score`` (bert-score 0.3.13, ``utils.bert_cos_score_idf``) embeds every distinct
text of one call, sorted by word count, then matches the pairs with ``greedy_cos_idf``. Called
in the pipeline's 64-pair chunks it re-embeds a question's reference at every regeneration and
pads more than it has to (issue 13). :func:`score_pairs` does the same computation with the
same public functions (``sent_encode``, ``padding``, ``bert_encode``, ``greedy_cos_idf``) and
three changes that do not alter any score:

- references are looked up in a bounded LRU :class:`EmbeddingCache` (text -> per-token
  embeddings and idf weights) and embedded only when missing;
- the texts to embed are sorted by their token count, not their word count, and cut into
  model batches of near-equal length (:func:`length_buckets`), so little is padding;
- each text is tokenized once.

A token's embedding does not depend on the padding of its batch (the attention mask hides
it), so scores equal ``BERTScorer.score`` on the same pairs up to float rounding (checked to
1e-6 in tests/integration/test_scoring_embedcache.py). ``all_layers`` and multi-reference
lists are not supported (qaflow uses neither).
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from typing import Any

import torch
from bert_score.utils import bert_encode, greedy_cos_idf, padding, sent_encode  # type: ignore[import-untyped]
from torch.nn.utils.rnn import pad_sequence

# 64 MiB of float32: ~690 MiniLM references (384 dims) of 64 tokens, far more than the
# regenerations of the questions in flight at once.
DEFAULT_CACHE_BYTES = 64 << 20

# A model batch ends where a text is shorter than this share of the batch's longest.
MIN_FILL = 0.85

Stats = tuple[torch.Tensor, torch.Tensor]  # (tokens x dims embedding, tokens idf weights)


class EmbeddingCache:
    """LRU map text -> :data:`Stats`, bounded by the bytes of the tensors it holds."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, Stats] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, text: str) -> Stats | None:
        got = self._items.get(text)
        if got is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(text)
        return got

    def put(self, text: str, stats: Stats) -> None:
        size = _nbytes(stats)
        if size > self.max_bytes:
            return
        old = self._items.pop(text, None)
        if old is not None:
            self.bytes -= _nbytes(old)
        self._items[text] = stats
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self.bytes -= _nbytes(evicted)

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0


def _nbytes(stats: Stats) -> int:
    return sum(t.element_size() * t.nelement() for t in stats)


def idf_weights(scorer: Any) -> Any:
    """The idf dict ``BERTScorer.score`` uses: its own when ``idf``, else 1 with [SEP]/[CLS] at 0."""
    if scorer.idf:
        return scorer._idf_dict  # bert-score exposes no getter
    idf_dict: defaultdict[int, float] = defaultdict(lambda: 1.0)
    idf_dict[scorer._tokenizer.sep_token_id] = 0
    idf_dict[scorer._tokenizer.cls_token_id] = 0
    return idf_dict


def length_buckets(ids: dict[str, list[int]], batch_size: int, min_fill: float = MIN_FILL) -> list[list[str]]:
    """Texts sorted by token count, longest first, cut into model batches of at most ``batch_size``.

    A batch also ends where the next text is shorter than ``min_fill`` of the batch's longest,
    so at most ``1 - min_fill`` of a batch's tokens are padding. On a CPU a forward pass costs
    about the same per token at batch 8 as at 64 (docs/flink-job.md), so smaller, tighter
    batches only save work; the cost is one more model call per bucket.
    """
    order = sorted(ids, key=lambda t: len(ids[t]), reverse=True)
    batches: list[list[str]] = []
    for text in order:
        if not batches or len(batches[-1]) >= batch_size or len(ids[text]) < min_fill * len(ids[batches[-1][0]]):
            batches.append([])
        batches[-1].append(text)
    return batches


def embed(texts: Sequence[str], scorer: Any, idf_dict: Any, batch_size: int) -> dict[str, Stats]:
    """Per-token embeddings (on CPU) and idf weights of each distinct text, shortest batches first.

    Mirrors ``bert_score.utils.get_bert_embedding``/``collate_idf`` on token ids computed once.
    """
    tokenizer, model, device = scorer._tokenizer, scorer._model, scorer.device
    ids = {t: sent_encode(tokenizer, t) for t in dict.fromkeys(texts)}
    out: dict[str, Stats] = {}
    for chunk in length_buckets(ids, batch_size):
        arr = [ids[t] for t in chunk]
        padded, _, mask = padding(arr, tokenizer.pad_token_id, dtype=torch.long)
        padded_idf, _, _ = padding([[idf_dict[i] for i in a] for a in arr], 0, dtype=torch.float)
        emb = bert_encode(model, padded.to(device), attention_mask=mask.to(device)).cpu()
        for i, text in enumerate(chunk):
            n = len(arr[i])
            out[text] = (emb[i, :n].clone(), padded_idf[i, :n].clone())
    return out


def _pad(stats: list[Stats], device: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``pad_batch_stats`` of ``bert_cos_score_idf``: padded embeddings, mask, padded idf."""
    emb = [e.to(device) for e, _ in stats]
    idf = [w.to(device) for _, w in stats]
    lens = torch.tensor([e.size(0) for e in emb])
    emb_pad = pad_sequence(emb, batch_first=True, padding_value=2.0)
    idf_pad = pad_sequence(idf, batch_first=True)
    mask = (torch.arange(int(lens.max())).expand(len(lens), -1) < lens.unsqueeze(1)).to(device)
    return emb_pad, mask, idf_pad


def score_pairs(
    scorer: Any,
    candidates: Sequence[str],
    references: Sequence[str],
    batch_size: int,
    cache: EmbeddingCache | None = None,
) -> torch.Tensor:
    """``(P, R, F)`` per pair, shape ``(n, 3)``, as ``BERTScorer.score`` on a ``bert_score.BERTScorer``.

    Raises ``ValueError`` for ``all_layers`` scorers. ``cache`` holds reference embeddings
    across calls; it must only ever serve this scorer (same model, layer and idf weights).
    """
    if getattr(scorer, "all_layers", False):
        msg = "score_pairs does not support all_layers"
        raise ValueError(msg)
    if not candidates:
        return torch.zeros((0, 3))
    idf_dict = idf_weights(scorer)
    stats: dict[str, Stats] = {}
    for ref in dict.fromkeys(references):
        got = cache.get(ref) if cache is not None else None
        if got is not None:
            stats[ref] = got
    missing = [t for t in dict.fromkeys([*references, *candidates]) if t not in stats]
    fresh = embed(missing, scorer, idf_dict, batch_size)
    stats.update(fresh)
    if cache is not None:
        for ref in dict.fromkeys(references):
            if ref in fresh:
                cache.put(ref, fresh[ref])
    device = scorer.device
    preds = []
    with torch.no_grad():
        for start in range(0, len(references), batch_size):
            refs = _pad([stats[r] for r in references[start : start + batch_size]], device)
            hyps = _pad([stats[c] for c in candidates[start : start + batch_size]], device)
            p, r, f = greedy_cos_idf(*refs, *hyps)
            preds.append(torch.stack((p, r, f), dim=-1).cpu())
    all_preds = torch.cat(preds, dim=0)
    if scorer.rescale_with_baseline:
        all_preds = (all_preds - scorer.baseline_vals) / (1 - scorer.baseline_vals)
    return all_preds
