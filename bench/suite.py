"""`make bench`: every benchmark of issue 13 side by side in one run, one JSON and one Markdown table.

Scenarios, one after the other (never two at once: they would share the CPU), on one set of
local servers (Kafka, PostgreSQL, Redis from ``qaflow.devstack``) where they need servers:

- ``api``: POST new, POST repeat and GET latency at a fixed open-loop rate (bench/api_latency.py);
- ``pipeline``: service pipeline questions/s, end to end and back end alone, and ``qaflow run``
  on the real servers, against embedded mode (bench/pipeline.py's ``run``);
- ``scoring``: pairs/s of the in-process scorer and the scorer service against raw bert-score
  in one call on the same pairs (bench/scoring.py);
- ``flink``: the score job on a MiniCluster against the same yardstick (bench/flink_throughput.py);
- ``llm-worker``: against C/L and against a quota (bench/llm_worker.py);
- ``first-score``: time from the first LLM answer to the first score in ``make run`` (bench/scoring.py).

Beside every figure: the 1-, 5- and 15-minute load averages from /proc/loadavg before and
after its scenario, and nproc. The machine is shared, so read ratios taken in the same
scenario, not absolute figures. Writes ``<results-dir>/bench-<UTC stamp>.json`` and ``.md``,
and copies them to ``latest.json`` / ``latest.md``; scripts/bench_report.py puts the table into
docs/performance.md. A scenario that fails is recorded as failed (with its log's tail) and the
others still run; the exit code is then 1.

    .venv/bin/python bench/suite.py              # the full run (about 6 minutes on a quiet 2-core machine)
    .venv/bin/python bench/suite.py --quick      # tiny sizes: a smoke test of the harness
    .venv/bin/python bench/suite.py --only api scoring
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
SCENARIOS = ("api", "pipeline", "scoring", "flink", "llm-worker", "first-score")
Log = Callable[[str], None]


def load() -> dict[str, Any]:
    """/proc/loadavg (1, 5, 15 min, runnable/total) and nproc, now."""
    fields = Path("/proc/loadavg").read_text().split()
    return {"load_1m": float(fields[0]), "load_5m": float(fields[1]), "load_15m": float(fields[2]),
            "runnable": fields[3], "nproc": os.cpu_count()}


@dataclass(frozen=True)
class Sizes:
    api_rate: float
    api_duration_s: float
    api_repeat_s: float
    api_get_s: float
    api_settle_s: float
    api_warmup_s: float
    pipeline_questions: int
    scoring_questions: int
    scoring_repeats: int
    flink_n: int
    llm_args: tuple[str, ...]
    first_score_limit: int | None


FULL = Sizes(api_rate=500, api_duration_s=30, api_repeat_s=10, api_get_s=10, api_settle_s=120, api_warmup_s=10,
             pipeline_questions=2000, scoring_questions=100, scoring_repeats=2, flink_n=600,
             llm_args=("--duration-s", "15", "--sequential-questions", "30", "--rpm-duration-s", "30",
                       "--skip-unlimited"),
             first_score_limit=None)
QUICK = Sizes(api_rate=20, api_duration_s=2, api_repeat_s=1, api_get_s=1, api_settle_s=30, api_warmup_s=1,
              pipeline_questions=40, scoring_questions=8, scoring_repeats=1, flink_n=64,
              llm_args=("--latency-ms", "50", "--duration-s", "2", "--sequential-questions", "4",
                        "--rpm", "600", "--rpm-window-s", "2", "--rpm-duration-s", "4", "--warmup-s", "1",
                        "--skip-unlimited"),
              first_score_limit=20)


class Runner:
    """Runs the scenarios with a rich progress display (as ``qaflow run`` shows its own)."""

    def __init__(self, sizes: Sizes, workdir: Path, console: Console, api_nice: int = 0) -> None:
        self.sizes = sizes
        self.api_nice = api_nice
        self.workdir = workdir
        self.console = console
        self.urls: dict[str, str] = {}
        self._status: Log = lambda s: None

    # -- helpers -------------------------------------------------------------------------------
    def subprocess(self, name: str, args: list[str]) -> str:
        """Run ``python args...``; stream its output to the progress line and a log; return stdout."""
        log_path = self.workdir / f"{name}.log"
        out_lines: list[str] = []
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with log_path.open("a") as log_file, subprocess.Popen(
            [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            cwd=HERE.parent,
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                log_file.write(line)
                out_lines.append(line)
                if line.strip():
                    self._status(line.strip()[:100])
            code = proc.wait()
        if code:
            tail = "".join(out_lines[-30:])
            msg = f"{' '.join(args[:1])} exited {code}:\n{tail}"
            raise RuntimeError(msg)
        return "".join(out_lines)

    # -- scenarios -----------------------------------------------------------------------------
    def api(self) -> dict[str, Any]:
        import api_latency

        s = self.sizes
        raw = api_latency.run(self.urls, rate=s.api_rate, duration_s=s.api_duration_s, repeat_s=s.api_repeat_s,
                              get_s=s.api_get_s, settle_s=s.api_settle_s, warmup_s=s.api_warmup_s, workdir=self.workdir,
                              log=self._status)
        phases = [("post-new", raw["post-new"], "p99 <= 50 ms, 0 errors"), ("post-repeat", raw["post-repeat"],
                  "p99 <= 20 ms"), ("get", raw["get"], "p99 <= 20 ms")]
        if "warm-up" in raw:  # shown, so the cold figure is never hidden
            phases.insert(0, ("warm-up: post-new on the freshly started services and servers", raw["warm-up"],
                              "(warm-up)"))
        if self.api_nice:  # a model of an api with its own CPU: reported beside the plain figure, never instead
            niced = api_latency.run(self.urls, rate=s.api_rate, duration_s=s.api_duration_s, repeat_s=0, get_s=0,
                                    warmup_s=s.api_warmup_s, workdir=self.workdir, phases=["post-new"],
                                    nice=self.api_nice, log=self._status)
            raw["post-new-niced"] = niced["post-new"]
            niced_row = (f"post-new, pipeline at nice {self.api_nice}", niced["post-new"], "(model)")
            phases.insert(len(phases) - 2, niced_row)
        rows = []
        for phase, r, target in phases:
            cpu = r.get("cpu_s", {})
            pipeline = sum(v for k, v in cpu.items() if k.endswith(("-worker", "-writer")))
            servers = sum(cpu.get(k, 0.0) for k in ("kafka", "postgresql", "redis"))
            cpu_text = (f"; CPU s: api {cpu['api']}, pipeline {pipeline:.1f}, servers {servers:.1f}, "
                        f"load generator {cpu['load generator']}" if cpu else "")
            if r.get("load_1m"):
                cpu_text += f"; load {r['load_1m'][0]} → {r['load_1m'][1]}"
            if phase == "post-repeat" and "quiet" in raw.get("settle", {}):
                q = raw["settle"]["quiet"]
                cpu_text += (f"; after the pipeline and servers went quiet ({q['waited_s']} s)" if q["quiet"]
                             else f"; the pipeline and servers were still busy after {q['waited_s']} s")
            rows.append((f"{phase} at {s.api_rate:g}/s ({r['requests']} requests, sent at {r['rate_sent']}/s)",
                         f"p50 {r['p50_ms']} / p95 {r['p95_ms']} / p99 {r['p99_ms']} ms; "
                         f"errors {r['errors']} ({_outcomes(r['outcomes'])}){cpu_text}", target))
        return {"rows": rows, "raw": raw}

    def pipeline(self) -> dict[str, Any]:
        n = self.sizes.pipeline_questions
        raw = pipeline_figures(self.urls, n, self.workdir, self._status)
        base = raw["scenarios"].get("embedded", {}).get("questions_per_s")
        labels = {"embedded": "embedded mode (`qaflow run`, memory bus, SQLite)",
                  "backend": "services, back end alone (draining a backlog)",
                  "e2e": "services end to end, through the api",
                  "e2e-batch": "services end to end, through the api, batches of 100",
                  "run-real": "`qaflow run` on Kafka, PostgreSQL, Redis"}
        e2e_target = ">= 500 q/s and >= 0.5x embedded"
        targets = {"e2e": e2e_target, "e2e-batch": e2e_target, "run-real": ">= 0.5x the service pipeline"}
        rows = []
        for name, r in raw["scenarios"].items():
            ratio = f", {r['questions_per_s'] / base:.2f}x embedded" if base else ""
            if name == "run-real":  # its target is against the services
                for other, label in (("e2e-batch", "batched e2e"), ("e2e", "single-POST e2e")):
                    if raw["scenarios"].get(other, {}).get("questions_per_s"):
                        ratio += f", {r['questions_per_s'] / raw['scenarios'][other]['questions_per_s']:.2f}x {label}"
            retried = f" (run again after a stall: {r['retried_after']})" if r.get("retried_after") else ""
            rows.append((f"{labels.get(name, name)}, {n} questions",
                         f"{r['questions_per_s']} questions/s{ratio}{retried}", targets.get(name, "")))
        return {"rows": rows, "raw": raw}

    def scoring(self) -> dict[str, Any]:
        s = self.sizes
        out = self.workdir / "scoring.json"
        self.subprocess("scoring", [str(HERE / "scoring.py"), "--questions", str(s.scoring_questions),
                                    "--repeats", str(s.scoring_repeats), "--out", str(out)])
        raw = json.loads(out.read_text())
        t = raw["throughput"]
        targets = {"in-process": ">= 0.9x raw", "service": ">= 0.9x raw"}
        rows = [(f"{name}, {t['pairs']} pairs, calls of {t['chunk']} (median of {len(t['rounds'])})",
                 f"{m['pairs_per_s']:.1f} pairs/s, {m['ratio_pairs_per_s']:.2f}x raw (wall), "
                 f"{m['ratio_cpu_per_pair']:.2f}x raw (CPU)", targets.get(name, "yardstick" if name == "raw" else ""))
                for name, m in t["median"].items()]
        return {"rows": rows, "raw": raw}

    def flink(self) -> dict[str, Any]:
        n = self.sizes.flink_n
        text = self.subprocess("flink", [str(HERE / "flink_throughput.py"), "--n", str(n), "--json",
                                         "--bootstrap", self.urls["kafka_bootstrap"],
                                         "--workdir", str(self.workdir / "flink")])
        raw = json.loads([ln for ln in text.splitlines() if ln.startswith("{")][-1])
        rows = [(f"score job on a MiniCluster, Kafka to Kafka, {n} answers",
                 f"{raw['flink_answers_per_s']} answers/s, {raw['ratio_to_one_call']:.2f}x raw bert-score in one call "
                 f"({raw['raw_one_call_pairs_per_s']} pairs/s)", ">= 0.8x raw")]
        return {"rows": rows, "raw": raw}

    def llm_worker(self) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        for group in ("throughput", "rpm"):
            out = self.workdir / f"llm-{group}.json"
            self.subprocess("llm-worker", [str(HERE / "llm_worker.py"), "--only", group, "--bootstrap",
                                           self.urls["kafka_bootstrap"], "--redis-url", self.urls["redis_url"],
                                           "--output", str(out), *self.sizes.llm_args])
            raw[group] = json.loads(out.read_text())
        thr, rpm = raw["throughput"], raw["rpm"]
        p = thr["params"]
        conc, seq = thr["scenarios"]["concurrent"], thr["scenarios"]["sequential"]
        limited = rpm["scenarios"]["rpm-limited"]
        rows = [
            (f"concurrent, fake LLM L={p['latency_ms']:g} ms, C={p['server_concurrency']}",
             f"{conc['answers_per_s']} answers/s = {thr['summary']['concurrent_share_of_ideal']:.0%} of C/L "
             f"({thr['summary']['ideal_concurrent_per_s']:.0f}/s); {thr['summary']['speedup_over_sequential']}x "
             f"sequential ({seq['answers_per_s']}/s)", "close to C/L"),
            (f"quota of {rpm['params']['rpm']}/min with QAFLOW_RPM_LIMIT",
             f"{limited['calls_per_min']} calls/min = {rpm['summary']['rpm_limited_share_of_quota']:.0%} of the quota, "
             f"429 share after warm-up {_pct(rpm['summary']['rpm_limited_share_429'])}", "near the quota, few 429s"),
        ]
        return {"rows": rows, "raw": raw}

    def first_score(self) -> dict[str, Any]:
        out = self.workdir / "first-score.json"
        args = [str(HERE / "scoring.py"), "--no-throughput", "--first-score", "--out", str(out)]
        if self.sizes.first_score_limit:
            args += ["--first-score-limit", str(self.sizes.first_score_limit)]
        self.subprocess("first-score", args)
        raw = json.loads(out.read_text())["first_score"]
        rows = [
            (f"`make run` ({raw['questions']} questions, fresh store): first LLM answer -> first score",
             f"{raw['first_llm_answer_to_first_score_s']} s", "<= 3 s"),
            ("process start -> first LLM answer / -> model loaded (background)",
             f"{raw['process_start_to_first_llm_answer_s']} s / {raw['process_start_to_model_loaded_s']} s", ""),
            ("first scoring call -> first score (includes the wait for the model)",
             f"{raw['first_scoring_call_to_first_score_s']} s", ""),
            ("process CPU seconds at model loaded / at first score (less load-dependent than wall time)",
             f"{raw.get('process_cpu_at_model_loaded_s')} s / {raw.get('process_cpu_at_first_score_s')} s", ""),
        ]
        alone = raw.get("standalone")
        if alone:  # the same start-up in a fresh process of its own, just before the run
            rows.append(("the scorer alone (bench/scorer_load.py): import / model build / first 64 pairs, wall (CPU)",
                         f"{alone['import_s']} ({alone['import_cpu_s']}) / {alone['model_build_s']} "
                         f"({alone['model_build_cpu_s']}) / {alone['first_64_pairs_s']} "
                         f"({alone['first_64_pairs_cpu_s']}) s;"
                         f" no bytecode cache for: {', '.join(alone['no_bytecode_cache']) or 'none'}", ""))
        return {"rows": rows, "raw": raw}

    # -- the run -------------------------------------------------------------------------------
    def run(self, names: list[str]) -> dict[str, Any]:
        report: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                  "sizes": self.sizes.__dict__, "load_before": load(), "scenarios": {}}
        began = time.monotonic()
        with Progress(TextColumn("[bold]bench[/] {task.fields[step]}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TextColumn("{task.description}"), console=self.console) as bar:
            task = bar.add_task("", total=len(names), step="")
            self._status = lambda s: bar.update(task, description=s)
            stack = None
            try:
                if any(n != "first-score" and n != "scoring" for n in names):
                    bar.update(task, step="servers", description="starting Kafka, PostgreSQL and Redis")
                    from qaflow.devstack.stack import DevStack

                    stack = DevStack(self.workdir / "servers").start()
                    self.urls = stack.addresses()
                for i, name in enumerate(names, 1):
                    bar.update(task, step=f"{i}/{len(names)} {name}", description="")
                    before, t0 = load(), time.monotonic()
                    try:
                        result = getattr(self, name.replace("-", "_"))()
                        result["status"] = "ok"
                    except Exception as exc:  # recorded; the other scenarios still run
                        result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[-3000:],
                                  "traceback": traceback.format_exc()[-3000:], "rows": []}
                    result.update(load_before=before, load_after=load(), seconds=round(time.monotonic() - t0, 1))
                    report["scenarios"][name] = result
                    mark = "ok" if result["status"] == "ok" else "[red]FAILED[/]"
                    bar.console.print(f"{name}: {mark} in {result['seconds']:.0f} s "
                                      f"(load {before['load_1m']} -> {result['load_after']['load_1m']})")
                    bar.advance(task)
            finally:
                if stack is not None:
                    stack.stop()
        report["load_after"] = load()
        report["seconds"] = round(time.monotonic() - began, 1)
        return report


def pipeline_figures(urls: dict[str, str], questions: int, workdir: Path, log: Log) -> dict[str, Any]:
    """``{"scenarios": {name: {"questions_per_s", "elapsed_s", ...}}}``: bench/pipeline.py's four
    setups when it is here (helper "throughput"), else embedded and run-real by ``qaflow run``."""
    try:
        import pipeline  # type: ignore[import-not-found,unused-ignore]  # bench/pipeline.py
    except ImportError:
        pipeline = None
    if pipeline is not None:
        result: dict[str, Any] = pipeline.run(questions, bootstrap=urls["kafka_bootstrap"],
                                              redis_url=urls["redis_url"], log=log)
        return result
    return _pipeline_fallback(urls, questions, workdir, log)


def _pipeline_fallback(urls: dict[str, str], questions: int, workdir: Path, log: Log) -> dict[str, Any]:
    import uuid

    from qaflow.datasets.synth import synth_questions, write_zhang_csv

    dataset = workdir / "pipeline-questions.csv"
    write_zhang_csv(list(synth_questions(questions, 0)), dataset)
    qaflow = str(Path(sys.executable).with_name("qaflow"))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("QAFLOW_")},
           "QAFLOW_LLM_PROVIDER": "offline", "QAFLOW_LLM_SIM_LATENCY_MS": "0", "QAFLOW_SCORER": "lexical",
           "QAFLOW_LOG_LEVEL": "warning"}
    setups = {
        "embedded": ["--store", f"sqlite:///{workdir / 'pipeline-embedded.db'}", "--bus", "memory://",
                     "--cache", "memory://"],
        "run-real": ["--store", urls["postgres_url"], "--bus", f"kafka://{urls['kafka_bootstrap']}",
                     "--cache", urls["redis_url"], "--run-id", f"bench-{uuid.uuid4().hex[:8]}"],
    }
    out: dict[str, Any] = {"questions": questions, "source": "bench/suite.py fallback (bench/pipeline.py absent)",
                           "scenarios": {}}
    for name, args in setups.items():
        log(f"pipeline {name}: qaflow run on {questions} questions")
        before = load()["load_1m"]
        done = subprocess.run([qaflow, "run", "--dataset", str(dataset), "--json", *args], capture_output=True,
                              text=True, env=env, timeout=1800, check=False)
        if done.returncode:
            msg = f"qaflow run ({name}) exited {done.returncode}: {done.stderr[-2000:]}"
            raise RuntimeError(msg)
        summary = json.loads(done.stdout)
        out["scenarios"][name] = {"questions_per_s": round(summary["questions_per_s"], 1),
                                  "elapsed_s": round(summary["elapsed_s"], 2), "load_before": before,
                                  "load_after": load()["load_1m"]}
    return out


def _outcomes(outcomes: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())) or "-"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def markdown(report: dict[str, Any]) -> str:
    """The run as one Markdown table, a row per figure, with the load beside it."""
    lb = report["load_before"]
    lines = [f"`make bench`{' --quick' if report.get('quick') else ''}, {report['started']}, "
             f"{lb['nproc']} CPUs, {report['seconds'] / 60:.1f} min in all; load average (1/5/15 min) "
             f"{lb['load_1m']}/{lb['load_5m']}/{lb['load_15m']} before, "
             f"{report['load_after']['load_1m']}/{report['load_after']['load_5m']}/{report['load_after']['load_15m']} "
             "after.", "",
             "| scenario | measured | figure | target (issue 13) | load 1 min before → after | nproc |",
             "|---|---|---|---|---|---|"]
    for name, r in report["scenarios"].items():
        load_cell = f"{r['load_before']['load_1m']} → {r['load_after']['load_1m']}"
        if r["status"] != "ok":
            lines_of = [ln.strip() for ln in r["error"].splitlines() if ln.strip()]
            error = " … ".join(dict.fromkeys([lines_of[0], lines_of[-1]])).replace("|", "\\|")[:300]
            lines.append(f"| {name} | FAILED | {error} | | {load_cell} | {r['load_before']['nproc']} |")
            continue
        for measured, figure, target in r["rows"]:
            cells = [name, measured, figure, target or "", load_cell, str(r["load_before"]["nproc"])]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness, figures mean little")
    p.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS), help="scenarios, in this order")
    p.add_argument("--results-dir", type=Path, default=None,
                   help="where the JSON and Markdown go (default bench/results; with --quick reports/bench-quick)")
    p.add_argument("--keep-logs", action="store_true", help="keep the scenarios' logs (their path is printed)")
    p.add_argument("--api-nice", type=int, default=0, metavar="N",
                   help="api scenario: also run post-new with the pipeline at nice N (a model of an api with "
                        "its own CPU), reported beside the plain figure (default: not run)")
    a = p.parse_args(argv)
    a.results_dir = a.results_dir or (HERE.parent / "reports" / "bench-quick" if a.quick else HERE / "results")
    console = Console(stderr=True)
    workdir = Path(tempfile.mkdtemp(prefix="qaflow-bench-suite-"))
    try:
        report = Runner(QUICK if a.quick else FULL, workdir, console, a.api_nice).run(list(a.only))
    finally:
        if a.keep_logs:
            console.print(f"logs: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report["quick"] = a.quick
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    a.results_dir.mkdir(parents=True, exist_ok=True)
    table = markdown(report)
    for stem in (f"bench-{stamp}", "latest"):
        (a.results_dir / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        (a.results_dir / f"{stem}.md").write_text(table)
    print(table)
    console.print(f"wrote {a.results_dir}/bench-{stamp}.json and .md (and latest.*), "
                  f"{report['seconds'] / 60:.1f} min")
    return 0 if all(r["status"] == "ok" for r in report["scenarios"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
