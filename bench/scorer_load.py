"""The scorer's start-up, alone in a fresh process: the yardstick for ``qaflow run``'s in-run load.

Prints one JSON object: wall and CPU seconds of the light import of bert-score (torch,
transformers, bert-score), of ``BertScoreScorer.start()`` (the model build, which imports
transformers' BERT modelling code), and of the first 64-pair scoring call on the pairs the
pipeline scores first; the torch thread count; and which of torch, transformers and
bert-score had no bytecode cache (``qaflow.scoring.lightimport.uncached_bytecode``).
``bench/scoring.py --first-score`` runs it beside ``qaflow run``, so a slow in-run load can be
told from a slow machine (issue 13, time to first score).

    .venv/bin/python bench/scorer_load.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _timed(fn: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, round(time.perf_counter() - wall, 3), round(time.process_time() - cpu, 3)


def main() -> int:
    began_cpu = time.process_time()
    from qaflow.scoring.lightimport import BYTECODE_CHECKED, import_bert_score, uncached_bytecode

    _, import_s, import_cpu = _timed(import_bert_score)
    from scoring import make_pairs

    from qaflow.core.settings import EmbeddedSettings, load
    from qaflow.scoring import make_scorer

    scorer = make_scorer(load(EmbeddedSettings))
    _, start_s, start_cpu = _timed(scorer.start)
    cands, refs = make_pairs(64)
    _, first_s, first_cpu = _timed(lambda: scorer.score(cands[:64], refs[:64]))
    import torch

    print(json.dumps({
        "import_s": import_s, "import_cpu_s": import_cpu,
        "model_build_s": start_s, "model_build_cpu_s": start_cpu,
        "first_64_pairs_s": first_s, "first_64_pairs_cpu_s": first_cpu,
        "process_cpu_s": round(time.process_time() - began_cpu, 3),
        "torch_threads": torch.get_num_threads(),
        "no_bytecode_cache": uncached_bytecode(BYTECODE_CHECKED),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
