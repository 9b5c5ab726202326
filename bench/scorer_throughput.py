"""Scorer throughput: pairs per second at several batch sizes, on ~3-sentence answers.

Each batch size gets its own scorer (``QAFLOW_SCORER_BATCH_SIZE`` = batch size) and scores
``--pairs`` distinct pairs in calls of that many pairs, the way the score stage calls it.
Texts are distinct on purpose: bert-score embeds each distinct sentence once per call, so
repeated texts would flatter the numbers. Other ``QAFLOW_SCORER_*`` variables apply.

    .venv/bin/python bench/scorer_throughput.py --batch-sizes 1,16,64 --pairs 128
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time

from qaflow.core import plugins
from qaflow.core.settings import ScorerSettings
from qaflow.scoring import make_scorer

SENTENCES = [
    "Sunlight is scattered by the molecules of the air, and blue light is scattered the most.",
    "Hold your breath for about ten seconds, or drink a glass of cold water slowly.",
    "Bacteria are living cells that reproduce on their own, while viruses need a host cell.",
    "Water a cactus every two weeks in summer and let the soil dry out completely in between.",
    "Antibiotics kill many bacteria but have no effect at all on viral infections.",
    "If the problem lasts for more than two days, you should see a doctor.",
    "A good pizza dough needs flour, water, yeast and salt, and it must rise for two hours.",
    "The French Revolution began in 1789 with the storming of the Bastille.",
    "You can reset most routers by holding the small button on the back for thirty seconds.",
    "Too much water makes the roots rot, which is the most common way houseplants die.",
    "Short wavelengths are scattered more strongly than long ones, which is why sunsets look red.",
    "Most people find that the simplest remedies work within a few minutes.",
    "Interest rates rise when the central bank wants to slow down inflation.",
    "A healthy adult should sleep between seven and nine hours every night.",
    "The easiest way to learn a language is to practise speaking it every day.",
    "Mount Everest is the highest mountain on Earth, at almost 8,849 metres above sea level.",
    "Regular exercise lowers blood pressure and improves your mood.",
    "Check the tyre pressure once a month and before every long journey.",
    "Python is a popular programming language because its code is easy to read.",
    "Bread goes stale faster in the fridge than at room temperature.",
    "The moon has phases because we see different parts of its sunlit half.",
    "To remove a red wine stain, blot it and cover it with salt or baking soda.",
    "Cats purr when they are content, but sometimes also when they are in pain.",
    "Save at least three months of expenses before you start investing.",
]


def make_pairs(n: int, seed: int = 7) -> tuple[list[str], list[str]]:
    """``n`` distinct (candidate, reference) pairs of three sentences each."""
    rng = random.Random(seed)
    seen: set[str] = set()
    texts: list[str] = []
    while len(texts) < 2 * n:
        text = " ".join(rng.sample(SENTENCES, 3))
        if text not in seen:
            seen.add(text)
            texts.append(text)
    return texts[:n], texts[n:]


def run(scorer_name: str, batch_sizes: list[int], n_pairs: int, overrides: dict[str, object]) -> None:
    cands, refs = make_pairs(n_pairs)
    print(
        f"scorer={scorer_name} pairs={n_pairs} cpus={os.cpu_count()} "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}"
    )
    header = f"{'batch':>6} {'load s':>8} {'score s':>8} {'pairs/s':>9} {'ms/pair':>8} {'cpu s':>8} {'pairs/cpu-s':>11}"
    print(header)
    print("-" * len(header))
    for batch in batch_sizes:
        settings = ScorerSettings(scorer=scorer_name, scorer_batch_size=batch, **overrides)  # type: ignore[arg-type]
        scorer = make_scorer(settings)
        began = time.perf_counter()
        scorer.start()
        load_s = time.perf_counter() - began
        try:
            scorer.score(cands[:batch], refs[:batch])  # warm-up
            began, cpu_began = time.perf_counter(), time.process_time()
            for i in range(0, n_pairs, batch):
                scorer.score(cands[i : i + batch], refs[i : i + batch])
            score_s, cpu_s = time.perf_counter() - began, time.process_time() - cpu_began
        finally:
            scorer.close()
        print(
            f"{batch:>6} {load_s:>8.2f} {score_s:>8.2f} {n_pairs / score_s:>9.1f} "
            f"{1000 * score_s / n_pairs:>8.2f} {cpu_s:>8.2f} {n_pairs / max(cpu_s, 1e-9):>11.1f}"
        )
    if scorer_name == "bertscore":
        print("load s of the first row includes importing torch, transformers and bert-score.")
    print("cpu s is the process's CPU time (all threads): less sensitive than wall time to other load.")
    print(f"load average now: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scorer", default="bertscore", choices=plugins.family("scorer").names())
    parser.add_argument("--batch-sizes", default="1,16,64", help="comma-separated pairs per call (default 1,16,64)")
    parser.add_argument("--pairs", type=int, default=128, help="pairs scored per batch size (default 128)")
    parser.add_argument("--model", default=None, help="QAFLOW_SCORER_MODEL: local directory or Hugging Face id")
    parser.add_argument("--num-layers", type=int, default=None, help="QAFLOW_SCORER_NUM_LAYERS")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda[:N]")
    parser.add_argument("--url", default=None, help="QAFLOW_SCORER_URL (scorer=remote)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    overrides = {
        k: v
        for k, v in {
            "scorer_model": args.model,
            "scorer_num_layers": args.num_layers,
            "scorer_device": args.device,
            "scorer_url": args.url,
        }.items()
        if v is not None
    }
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    run(args.scorer, batch_sizes, args.pairs, overrides)
    return 0


if __name__ == "__main__":
    sys.exit(main())
