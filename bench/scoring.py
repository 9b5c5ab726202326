"""Scorer benchmark (issue 13): qaflow's BERTScore against raw bert-score in ONE call, same pairs.

Pairs: the references of ``data/sample.csv`` and the offline simulator's answers, generation
1 for every question, then generations 2 and 3 for some (a question's regenerations share its
reference, as in a real run; ~1.3 pairs per reference). Measured side by side, interleaved
over ``--repeats`` rounds so a change in the machine's load hits every row alike:

- ``raw``: ``bert_score.BERTScorer.score`` on all pairs in one call (the yardstick);
- ``chunked-plain``: the same, called in ``--chunk``-pair chunks (what the score stage did
  before issue 13);
- ``in-process``: qaflow's ``BertScoreScorer`` in ``--chunk``-pair chunks, as the pipeline
  calls it (fresh reference cache each round);
- ``service``: the scorer service under gunicorn (a separate process), called by
  ``RemoteScorer`` in ``--chunk``-pair chunks.

Every scorer runs with the same torch thread count (``--threads``, default 1: on a 2-core
machine shared with other work, two OpenMP threads per process mostly spin). Wall-clock
pairs/s and CPU seconds per pair (process CPU time of all threads; for the
service, of the gunicorn processes) are both reported, with ``os.getloadavg()`` beside each
figure. Ratios to ``raw`` of the same round are the point: the machine is shared.

``--first-score`` also runs ``qaflow run`` on the sample as ``make run`` does (fresh SQLite
store, offline simulator) and reads, from its own log timestamps, the time from the first
LLM answer to the first score.

    .venv/bin/python bench/scoring.py --questions 150 --repeats 2 --first-score
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SEED = 7


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def make_pairs(n_questions: int) -> tuple[list[str], list[str]]:
    """Generation 1 of every question, then 2 for every 3rd, then 3 for every 9th (pipeline order)."""
    from qaflow.datasets import open_dataset
    from qaflow.llm.base import LlmRequest
    from qaflow.llm.offline import simulated_answer
    from qaflow.llm.prompt import render_prompt

    questions = list(open_dataset(ROOT / "data" / "sample.csv", limit=n_questions))
    cands: list[str] = []
    refs: list[str] = []
    for generation, every in ((1, 1), (2, 3), (3, 9)):
        for i, q in enumerate(questions):
            if i % every:
                continue
            request = LlmRequest(question_id=q.id, title=q.title, content=q.content, generation=generation,
                                 delivery=1, prompt=render_prompt(q.title, q.content, "en", None), language="en",
                                 reference_answer=q.reference_answer)
            cands.append(simulated_answer(request, SEED))
            refs.append(q.reference_answer)
    return cands, refs


def cpu_of(pids: list[int]) -> float:
    """utime + stime of processes, in seconds (Linux /proc/<pid>/stat fields 14 and 15)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def measure(name: str, n: int, fn: Callable[[], Any], cpu: Callable[[], float]) -> dict[str, Any]:
    before = load_avg()
    cpu0, t0 = cpu(), time.perf_counter()
    fn()
    wall, cpu_s = time.perf_counter() - t0, cpu() - cpu0
    row = {"scenario": name, "pairs": n, "wall_s": round(wall, 3), "pairs_per_s": round(n / wall, 2),
           "cpu_s": round(cpu_s, 3), "cpu_ms_per_pair": round(1000 * cpu_s / n, 2),
           "load_before": before, "load_after": load_avg()}
    log(f"  {name:<14} {row['pairs_per_s']:>8.1f} pairs/s  {row['cpu_ms_per_pair']:>7.1f} cpu-ms/pair  "
        f"load {before[0]:.1f}")
    return row


def chunks(cands: list[str], refs: list[str], size: int) -> list[tuple[list[str], list[str]]]:
    return [(cands[i : i + size], refs[i : i + size]) for i in range(0, len(cands), size)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ScorerService:
    """The scorer service started as its container starts it: gunicorn with its config module."""

    def __init__(self, chunk: int, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "scorer-service.log"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("QAFLOW_", "PROMETHEUS_"))}
        self.env = {**clean, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
                    "QAFLOW_HTTP_PORT": str(self.port), "QAFLOW_SCORER": "bertscore",
                    "QAFLOW_SCORER_DEVICE": "cpu", "QAFLOW_SCORER_BATCH_SIZE": str(chunk),
                    "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prom")}
        (workdir / "prom").mkdir(exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 600) -> None:
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                [gunicorn, "--config", "python:qaflow.services.scorer.gunicorn_conf",
                 "qaflow.services.scorer.app:create_app()"], env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                msg = f"scorer service exited: {self.log_path.read_text()[-2000:]}"
                raise RuntimeError(msg)
            try:
                if requests.get(self.url + "/readyz", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        msg = f"scorer service not ready in {timeout_s}s"
        raise RuntimeError(msg)

    def pids(self) -> list[int]:
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [self.proc.pid, *map(int, children)]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def bench_throughput(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import bert_score  # type: ignore[import-untyped]

    from qaflow.core.settings import ScorerSettings
    from qaflow.scoring.bertscore import LANG, BertScoreScorer, resolve_model
    from qaflow.scoring.remote import RemoteScorer

    cands, refs = make_pairs(args.questions)
    n = len(cands)
    log(f"{n} pairs, {len(set(refs))} distinct references, chunks of {args.chunk}")
    settings = ScorerSettings(scorer_device="cpu", scorer_batch_size=args.chunk)
    model_type = resolve_model(settings.scorer_model)[0]
    log("loading bert-score and qaflow's scorer in this process")
    raw = bert_score.BERTScorer(model_type=model_type, num_layers=6, lang=LANG, device="cpu")
    ours = BertScoreScorer(settings)
    ours.start()
    service = None
    if not args.no_service:
        log("starting the scorer service (gunicorn)")
        service = ScorerService(args.chunk, workdir)
        try:
            service.start()
            remote = RemoteScorer(ScorerSettings(scorer="remote", scorer_url=service.url, scorer_timeout_s=600))
            remote.start()
        except BaseException:
            service.stop()
            raise
    try:
        return _rounds(args, cands, refs, raw, ours, service, remote if service else None)
    finally:
        if service is not None:
            service.stop()
        ours.close()


def _rounds(args: argparse.Namespace, cands: list[str], refs: list[str], raw: Any, ours: Any,
            service: ScorerService | None, remote: Any) -> dict[str, Any]:
    import torch

    n = len(cands)
    # warm-up: first calls pay for lazy initialisation inside torch
    raw.score(cands[:8], refs[:8], batch_size=args.chunk)
    ours.score(cands[:8], refs[:8])
    if service is not None:
        remote.score(cands[:8], refs[:8])
    # no text is truncated, so every scenario scores exactly the same texts
    assert all(len(t) <= ours.settings.scorer_max_chars for t in cands + refs)

    def run_ours() -> None:
        ours.cache.clear()
        for c, r in chunks(cands, refs, args.chunk):
            ours.score(c, r)

    def run_remote() -> None:
        for c, r in chunks(cands, refs, args.chunk):
            remote.score(c, r)

    def service_cpu() -> float:
        assert service is not None
        return cpu_of(service.pids())

    own_cpu = time.process_time
    rounds = []
    with torch.inference_mode():
        for k in range(args.repeats):
            log(f"round {k + 1}/{args.repeats}")
            rows = [
                measure("raw", n, lambda: raw.score(cands, refs, batch_size=args.chunk), own_cpu),
                measure("chunked-plain", n, lambda: [raw.score(c, r, batch_size=args.chunk)
                                                     for c, r in chunks(cands, refs, args.chunk)], own_cpu),
                measure("in-process", n, run_ours, own_cpu),
            ]
            if service is not None:
                rows.append(measure("service", n, run_remote, service_cpu))
            base = rows[0]
            for row in rows:
                row["ratio_pairs_per_s"] = round(row["pairs_per_s"] / base["pairs_per_s"], 3)
                row["ratio_cpu_per_pair"] = round(base["cpu_ms_per_pair"] / row["cpu_ms_per_pair"], 3)
            rounds.append(rows)
    summary = {}
    for name in [r["scenario"] for r in rounds[0]]:
        rows = [row for rnd in rounds for row in rnd if row["scenario"] == name]
        summary[name] = {key: round(statistics.median(r[key] for r in rows), 3)
                         for key in ("pairs_per_s", "cpu_ms_per_pair", "ratio_pairs_per_s", "ratio_cpu_per_pair")}
        summary[name]["load_1min"] = [r["load_before"][0] for r in rows]
    return {"pairs": n, "distinct_references": len(set(refs)), "chunk": args.chunk, "rounds": rounds,
            "median": summary}


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def _stamp(line: str) -> float | None:
    m = LOG_LINE.match(line)
    if not m:
        return None
    return dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=dt.UTC).timestamp()


CPU_SO_FAR = re.compile(r"process CPU so far ([0-9.]+)s")


def _cpu_so_far(line: str) -> float | None:
    m = CPU_SO_FAR.search(line)
    return float(m.group(1)) if m else None


def bench_first_score(workdir: Path, limit: int | None = None) -> dict[str, Any]:
    """`make run`'s command, on a fresh store, with DEBUG logs; times read from the log lines.

    ``limit`` answers only the first questions (``--limit``; a smoke run), else all 210.
    """
    qaflow = str(Path(sys.executable).with_name("qaflow"))
    cmd = [qaflow, "--log-level", "debug", "run", "--dataset", str(ROOT / "data" / "sample.csv"),
           "--store", f"sqlite:///{workdir / 'first-score.db'}", "--report", str(workdir / "sample.html"), "--json"]
    if limit:
        cmd += ["--limit", str(limit)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QAFLOW_")}
    standalone = scorer_load_alone(clean)
    before = load_avg()
    log("running `qaflow run` on the sample (fresh store) for time to first score")
    began = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=clean, timeout=1200, check=False)
    if proc.returncode != 0:
        msg = f"qaflow run failed: {proc.stderr[-2000:]}"
        raise RuntimeError(msg)
    first_answer = first_call = first_score = loaded = None
    cpu_at_first_score = cpu_at_loaded = None
    for line in proc.stderr.splitlines():
        t = _stamp(line)
        if t is None:
            continue
        if first_answer is None and " answered question_id=" in line:
            first_answer = t
        elif first_call is None and "first scoring call" in line:
            first_call = t
        elif first_score is None and "first scores out" in line:
            first_score = t
            cpu_at_first_score = _cpu_so_far(line)
        elif loaded is None and "scorer loaded in the background" in line:
            loaded = t
            cpu_at_loaded = _cpu_so_far(line)
    if first_answer is None or first_score is None:
        msg = "qaflow run's log has no first answer / first score line"
        raise RuntimeError(msg)
    summary = json.loads(proc.stdout)
    result = {
        "command": " ".join(cmd[1:]),
        "first_llm_answer_to_first_score_s": round(first_score - first_answer, 2),
        "process_start_to_first_llm_answer_s": round(first_answer - began, 2),
        "process_start_to_model_loaded_s": round(loaded - began, 2) if loaded else None,
        "first_scoring_call_to_first_score_s": round(first_score - first_call, 2) if first_call else None,
        "process_cpu_at_model_loaded_s": cpu_at_loaded,
        "process_cpu_at_first_score_s": cpu_at_first_score,
        "run_elapsed_s": round(summary.get("elapsed_s", 0.0), 2),
        "questions": summary.get("questions"),
        "load_before": before,
        "load_after": load_avg(),
        "standalone": standalone,
    }
    log(f"  first LLM answer -> first score: {result['first_llm_answer_to_first_score_s']} s "
        f"(model loaded {result['process_start_to_model_loaded_s']} s after start), load {before[0]:.1f}")
    return result


def scorer_load_alone(env: dict[str, str]) -> dict[str, Any]:
    """bench/scorer_load.py in a fresh process (the scorer's start-up with nothing else running),
    with the load before and after: the yardstick for the in-run figures."""
    before = load_avg()
    log("loading the scorer alone in a fresh process (bench/scorer_load.py)")
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("scorer_load.py"))], capture_output=True,
                          text=True, env=env, timeout=1200, check=False)
    if proc.returncode != 0:
        msg = f"bench/scorer_load.py failed: {proc.stderr[-2000:]}"
        raise RuntimeError(msg)
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    out.update(load_before=before, load_after=load_avg())
    log(f"  alone: import {out['import_s']} s, model build {out['model_build_s']} s, first 64 pairs "
        f"{out['first_64_pairs_s']} s; no bytecode cache: {', '.join(out['no_bytecode_cache']) or 'none'}")
    return out


def markdown(report: dict[str, Any]) -> str:
    lines = [f"Scoring benchmark, {report['when']}, {report['cpus']} CPUs, "
             f"torch threads {report['torch_threads']}.", ""]
    t = report.get("throughput")
    if t:
        lines += [f"{t['pairs']} pairs ({t['distinct_references']} distinct references), chunks of {t['chunk']}; "
                  f"median of {len(t['rounds'])} interleaved rounds.", "",
                  "| scorer | pairs/s | ratio to raw (wall) | CPU ms/pair | ratio to raw (CPU) | load (1 min) |",
                  "|---|---|---|---|---|---|"]
        for name, m in t["median"].items():
            lines.append(f"| {name} | {m['pairs_per_s']:.1f} | {m['ratio_pairs_per_s']:.2f} | "
                         f"{m['cpu_ms_per_pair']:.1f} | {m['ratio_cpu_per_pair']:.2f} | "
                         f"{', '.join(f'{x:.1f}' for x in m['load_1min'])} |")
        lines.append("")
    f = report.get("first_score")
    if f:
        lines += ["| `make run` (fresh store) | seconds |", "|---|---|",
                  f"| first LLM answer -> first score | {f['first_llm_answer_to_first_score_s']} |",
                  f"| process start -> first LLM answer | {f['process_start_to_first_llm_answer_s']} |",
                  f"| process start -> model loaded (background) | {f['process_start_to_model_loaded_s']} |",
                  f"| process CPU seconds at model loaded / at first score | {f.get('process_cpu_at_model_loaded_s')}"
                  f" / {f.get('process_cpu_at_first_score_s')} |",
                  f"| whole run (elapsed_s) | {f['run_elapsed_s']} |",
                  f"| load (1 min) before / after | {f['load_before'][0]} / {f['load_after'][0]} |", ""]
        a = f.get("standalone")
        if a:
            lines += ["| the scorer alone, fresh process (bench/scorer_load.py) | wall s | CPU s |", "|---|---|---|",
                      f"| import of torch, transformers, bert-score | {a['import_s']} | {a['import_cpu_s']} |",
                      f"| model build (`BertScoreScorer.start`) | {a['model_build_s']} | {a['model_build_cpu_s']} |",
                      f"| first 64-pair call ({a['torch_threads']} torch threads) | {a['first_64_pairs_s']} | "
                      f"{a['first_64_pairs_cpu_s']} |",
                      f"| no bytecode cache for | {', '.join(a['no_bytecode_cache']) or 'none'} | |", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=150, help="questions of data/sample.csv (default 150)")
    parser.add_argument("--chunk", type=int, default=64, help="pairs per call, the pipeline's "
                        "QAFLOW_SCORER_BATCH_SIZE (default 64)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of every scorer, OMP_NUM_THREADS "
                        "(default 1)")
    parser.add_argument("--no-service", action="store_true", help="skip the scorer service under gunicorn")
    parser.add_argument("--no-throughput", action="store_true", help="skip the pairs/s comparison")
    parser.add_argument("--first-score", action="store_true", help="also time `qaflow run`'s first score")
    parser.add_argument("--first-score-limit", type=int, default=None, help="questions of that run (default all)")
    parser.add_argument("--out", default=str(RESULTS / "scoring.json"), help="JSON result file")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the scorer service on kill too
    # Same intra-op thread count everywhere: read by torch at import here and by BertScoreScorer
    # in this process and in the service (OMP_NUM_THREADS). On a 2-core machine shared with
    # other work, 2 OpenMP threads spin against each other and against everyone else.
    user_omp = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)

    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "torch_threads": torch.get_num_threads(),
        "load_average_before": load_avg(),
    }
    with tempfile.TemporaryDirectory(prefix="qaflow-bench-") as tmp:
        if not args.no_throughput:
            report["throughput"] = bench_throughput(args, Path(tmp))
        if args.first_score:  # as `make run` runs it: torch's own thread count unless the user set one
            if user_omp is None:
                del os.environ["OMP_NUM_THREADS"]
            report["first_score"] = bench_first_score(Path(tmp), args.first_score_limit)
    report["load_average_after"] = load_avg()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    out.with_suffix(".md").write_text(table + "\n")
    print(table)
    log(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
