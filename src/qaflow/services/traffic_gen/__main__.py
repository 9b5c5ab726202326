"""``python -m qaflow.services.traffic_gen``: submit a data set through the api at a rate.

Every option defaults to its ``QAFLOW_TRAFFIC_*`` variable (see ``--help``). It prints a
summary table, or JSON with ``--json``; it serves /healthz and /metrics on
``QAFLOW_HTTP_PORT`` while it runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from qaflow.cli.options import Option, add_arguments, given_flags
from qaflow.core.errors import ConfigError, DatasetError
from qaflow.core.settings import TrafficGenSettings, load
from qaflow.datasets import open_dataset
from qaflow.services.logs import configure_logging
from qaflow.services.probes import Probes
from qaflow.services.runner import install_stop_handlers
from qaflow.services.traffic_gen.arrivals import arrival_times, plan
from qaflow.services.traffic_gen.client import ApiClient, poll_until_terminal, send
from qaflow.services.traffic_gen.report import Report, render

logger = logging.getLogger("qaflow.services.traffic_gen")
NAME = "traffic-gen"
LATE_S = 0.1

# option -> settings field; each option's default is its QAFLOW_* variable.
OPTIONS: dict[str, str] = {
    "--api-url": "traffic_api_url",
    "--dataset": "traffic_dataset",
    "--rate": "traffic_rate",
    "--distribution": "traffic_distribution",
    "--duration-s": "traffic_duration_s",
    "--total": "traffic_total",
    "--repeat-share": "traffic_repeat_share",
    "--seed": "traffic_seed",
    "--wait-s": "traffic_wait_s",
    "--run-id": "run_id",
    "--http-port": "http_port",
    "--log-level": "log_level",
    "--log-format": "log_format",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m qaflow.services.traffic_gen",
        description="Send a data set through the qaflow api at a rate (Poisson, bursty or uniform arrivals, "
        "a share of repeats) and report what came back.",
    )
    add_arguments(p, TrafficGenSettings, [Option(flag, name, metavar="VALUE") for flag, name in OPTIONS.items()])
    p.add_argument("--json", action="store_true", help="Print the summary as JSON instead of a table.")
    p.add_argument("--workers", type=int, default=16, help="Threads sending requests (default 16), so slow "
                   "replies do not hold back the arrivals.")
    p.add_argument("--timeout-s", type=float, default=30.0, help="HTTP timeout of one request (default 30).")
    p.add_argument("--retries", type=int, default=3, help="Retries of a request answered 429, 502-504 or not "
                   "answered at all, after Retry-After (default 3; 0 to count every refusal as final).")
    p.add_argument("--ids-file", type=Path, default=None,
                   help="Write the ids of the questions the api accepted (200 or 202), one per line.")
    return p


def run(s: TrafficGenSettings, *, workers: int, timeout_s: float, retries: int, stop: threading.Event) -> Report:
    run_id = s.run_id or f"traffic-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    rng = random.Random(s.traffic_seed)
    dataset = open_dataset(s.traffic_dataset)
    report = Report(run_id=run_id, api_url=s.traffic_api_url, distribution=s.traffic_distribution,
                    rate=s.traffic_rate, wait_s=s.traffic_wait_s)
    key = s.traffic_api_key.get_secret_value() if s.traffic_api_key else None
    client = ApiClient(s.traffic_api_url, timeout_s=timeout_s, api_key=key)
    schedule = plan(dataset, arrival_times(s.traffic_distribution, s.traffic_rate, random.Random(rng.random())),
                    rng, repeat_share=s.traffic_repeat_share, total=s.traffic_total, duration_s=s.traffic_duration_s)
    logger.info("run %s: sending %s to %s, %s arrivals at %g/s", run_id, s.traffic_dataset, s.traffic_api_url,
                s.traffic_distribution, s.traffic_rate)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="send") as pool:
        started = time.monotonic()
        futures = []
        for item in schedule:
            delay = started + item.at_s - time.monotonic()
            if delay > 0 and stop.wait(delay):
                break
            if stop.is_set():
                break
            late = -delay > LATE_S
            futures.append(pool.submit(send, client, report, item.item, run_id, item.repeat, late, retries, stop))
        for f in futures:
            f.result()
        report.elapsed_s = time.monotonic() - started
        if s.traffic_wait_s > 0 and not stop.is_set():
            report.waited_s = poll_until_terminal(client, report, pool, s.traffic_wait_s, stop)
    client.close()
    return report


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    overrides: dict[str, Any] = {name: getattr(args, name) for name in OPTIONS.values()}
    flags = given_flags(args, [Option(flag, name) for flag, name in OPTIONS.items()])
    try:
        s = load(TrafficGenSettings, flags=flags, **overrides)
    except ConfigError as exc:
        print(f"{NAME}: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(s.log_format, s.log_level, NAME)
    stop = install_stop_handlers()
    probes = Probes(s.http_port, s.http_host)
    try:
        probes.start()
        probes.ready = True
    except OSError as exc:
        logger.warning("no /healthz or /metrics: port %d unavailable (%s)", s.http_port, exc)

    def heartbeat() -> None:  # the send loop sleeps between arrivals; it is alive all the same
        while not stop.wait(5.0):
            probes.beat()

    threading.Thread(target=heartbeat, name="heartbeat", daemon=True).start()
    try:
        report = run(s, workers=max(1, args.workers), timeout_s=args.timeout_s, retries=max(0, args.retries),
                     stop=stop)
        summary = report.to_dict()
        if args.ids_file is not None:
            args.ids_file.write_text("".join(f"{qid}\n" for qid in report.accepted()))
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            from rich.console import Console

            Console().print(render(summary))
        if s.traffic_idle and not stop.is_set():
            # In a Deployment an exit would be restarted (and backed off): stay up, healthy, idle.
            logger.info("run %s done; idle until stopped (QAFLOW_TRAFFIC_IDLE)", report.run_id)
            stop.wait()
    except DatasetError as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return 2
    finally:
        probes.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
