"""API latency at a fixed open-loop rate (issue 13): POST new, POST repeat, GET, over HTTP only.

The api and the pipeline behind it (llm-worker with the offline simulator at 0 ms, retry-worker,
score-worker with the lexical scorer, storage-writer) run as processes started the way
``qaflow dev up --services`` starts them, on the given Kafka, PostgreSQL and Redis, so the
pipeline consumes while the api is loaded. Three phases, each at ``rate`` requests/s
(:mod:`openloop`):

1. ``post-new``: ``rate x duration_s`` distinct questions, each POSTed once (202 expected);
2. ``post-repeat``: once the pipeline has answered them (or ``settle_s`` has passed), the same
   questions again (200 from the cache expected; a 202 means still in flight);
3. ``get``: ``GET /v1/questions/<id>`` of those questions.

    .venv/bin/python bench/api_latency.py --kafka 127.0.0.1:9092 --postgres postgresql://... --redis redis://...
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import openloop


def questions(n: int, seed: int) -> list[dict[str, Any]]:
    from qaflow.datasets.synth import synth_questions

    tag = f"bench {time.time_ns()}"  # new questions every run: the store may hold earlier ones
    return [{"title": f"{q.title} ({tag} #{i})", "content": q.content, "reference_answer": q.reference_answer}
            for i, q in enumerate(synth_questions(n, seed))]


def wait_answered(api: str, ids: list[str], settle_s: float) -> dict[str, Any]:
    """Poll a sample of ``ids`` until all are terminal or ``settle_s`` passes."""
    sample = ids[:: max(1, len(ids) // 20)] + ids[-1:]
    began = time.monotonic()
    pending = set(sample)
    while pending and time.monotonic() - began < settle_s:
        for qid in list(pending):
            try:
                r = requests.get(f"{api}/v1/questions/{qid}", timeout=10)
            except requests.RequestException:  # an api still digging out of the load: ask again later
                break
            if r.ok and r.json().get("status") in ("validated", "exhausted", "failed"):
                pending.discard(qid)
        if pending:
            time.sleep(1)
    return {"settled_s": round(time.monotonic() - began, 1), "sample": len(sample), "still_pending": len(pending)}


def run(urls: dict[str, str], *, rate: float, duration_s: float, repeat_s: float, get_s: float,
        settle_s: float = 120.0, workdir: Path | None = None,
        log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True)) -> dict[str, Any]:
    """The three phases against a freshly started api and pipeline; ``urls`` has kafka_bootstrap,
    postgres_url and redis_url (DevStack.addresses())."""
    from qaflow.cli.dev import start_services
    from qaflow.core.ids import question_id
    from qaflow.devstack import services as dev_services

    with tempfile.TemporaryDirectory(prefix="qaflow-bench-api-", dir=workdir, ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        log("starting the api and the pipeline services (offline LLM at 0 ms, lexical scorer)")
        running = start_services(root, urls, llm="offline", scorer="lexical",
                                 extra_env={"QAFLOW_LLM_SIM_LATENCY_MS": "0", "QAFLOW_LOG_LEVEL": "warning"})
        dev_services.save(root, running)
        try:
            api = running["api"]["url"].rstrip("/")
            qs = questions(max(1, int(rate * duration_s)), seed=3)
            posts = [openloop.Call("POST", f"{api}/v1/questions", q) for q in qs]
            requests.post(f"{api}/v1/questions", json=questions(1, seed=4)[0], timeout=60)  # warm the worker
            log(f"post-new: {len(posts)} POSTs at {rate:g}/s")
            out: dict[str, Any] = {"api": api, "rate": rate}
            out["post-new"] = openloop.run(posts, rate, expect=(202,))
            ids = [question_id(q["title"], q["content"]) for q in qs[:: max(1, len(qs) // 200)]]
            log(f"waiting up to {settle_s:g} s for the pipeline to answer them")
            out["settle"] = wait_answered(api, ids, settle_s)
            n_repeat = max(1, int(rate * repeat_s))
            repeats = [posts[i % len(posts)] for i in range(n_repeat)]
            log(f"post-repeat: {n_repeat} POSTs of answered questions at {rate:g}/s")
            out["post-repeat"] = openloop.run(repeats, rate, expect=(200,))
            n_get = max(1, int(rate * get_s))
            gets = [openloop.Call("GET", f"{api}/v1/questions/{ids[i % len(ids)]}") for i in range(n_get)]
            log(f"get: {n_get} GETs at {rate:g}/s")
            out["get"] = openloop.run(gets, rate, expect=(200,))
        finally:
            dev_services.stop(root)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kafka", required=True, help="host:port")
    p.add_argument("--postgres", required=True, help="postgresql://...")
    p.add_argument("--redis", required=True, help="redis://host:port/db")
    p.add_argument("--rate", type=float, default=500.0, help="requests/s of every phase (default 500)")
    p.add_argument("--duration-s", type=float, default=20.0, help="length of post-new (default 20)")
    p.add_argument("--repeat-s", type=float, default=10.0, help="length of post-repeat (default 10)")
    p.add_argument("--get-s", type=float, default=10.0, help="length of get (default 10)")
    p.add_argument("--settle-s", type=float, default=120.0, help="longest wait for the answers (default 120)")
    a = p.parse_args(argv)
    urls = {"kafka_bootstrap": a.kafka, "postgres_url": a.postgres, "redis_url": a.redis}
    print(json.dumps(run(urls, rate=a.rate, duration_s=a.duration_s, repeat_s=a.repeat_s, get_s=a.get_s,
                         settle_s=a.settle_s), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
