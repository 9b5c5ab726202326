"""A deliberately slow copy stage for the crash test (run as a subprocess, then SIGKILLed).

It runs :class:`qaflow.pipeline.worker.Worker` over Kafka: each record of ``qa.questions``
(under ``--prefix``) is copied to ``--output``, and one line with the question id is
appended to ``--progress`` as the record is handled, before the batch is published and
committed. It runs until it is killed or receives SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from typing import Any

from qaflow.bus.kafka import KafkaBus
from qaflow.bus.prefixed import PrefixedBus
from qaflow.core import topics
from qaflow.core.settings import BackendSettings
from qaflow.pipeline.outputs import Output
from qaflow.pipeline.worker import Worker

FAST_GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 500, "max_poll_interval_ms": 20_000}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--progress", required=True)
    ap.add_argument("--delay-ms", type=float, default=10.0)
    ap.add_argument("--batch", type=int, default=10)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    url = f"kafka://{args.bootstrap}"
    bus = PrefixedBus(KafkaBus(url, BackendSettings(bus_url=url), consumer_options=FAST_GROUP), args.prefix)
    bus.start()
    progress = open(args.progress, "a", buffering=1)  # noqa: SIM115 - lives as long as the process

    def copy(batch: list[tuple[Any, Any]]) -> list[Output]:
        outputs = []
        for record, message in batch:
            time.sleep(args.delay_ms / 1000)
            progress.write(f"{message.question_id}\n")
            outputs.append(Output(args.output, record.key, record.value))
        return outputs

    worker = Worker(
        "crash-copy",
        bus.consumer(args.group, [topics.QUESTIONS], client_id="crash-consumer"),
        bus.producer(client_id="crash-consumer"),
        copy,
        max_records=args.batch,
    )
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    worker.start()
    print("started", flush=True)
    try:
        while not stopping:
            worker.step(0.5)
    finally:
        worker.close()
        progress.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
