"""The api's Kafka wait, alone: ``flush`` against ``wait_delivered`` under gevent, open loop (issue 13).

One :class:`~qaflow.bus.kafka_producer.KafkaBusProducer` on its own broker (qaflow.devstack),
one greenlet per record started at its due time (``--rate``/s), each sending one record and
waiting for it the way a POST does, so concurrent waits overlap as in a gevent api worker.
The two ways alternate (``--rounds``), each on a fresh producer. Prints per way: latency
percentiles from the send to the end of the wait, this process's CPU seconds, and
kafka-python's records per produce request.

    .venv/bin/python bench/api_producer.py --rate 500 --records 5000 --rounds 2
"""

from gevent import monkey

monkey.patch_all()

# ruff: noqa: E402 - gevent patches the standard library before anything else is imported
import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import gevent

from qaflow.bus.kafka import KafkaBus
from qaflow.core.topics import TopicSpec
from qaflow.devstack import KafkaServer

WAYS = ("flush", "wait_delivered")


def measure(bus: KafkaBus, way: str, rate: float, records: int, size: int) -> dict[str, Any]:
    producer = bus.producer("bench-api-producer")
    producer.start()
    producer.send("bench", "warm", b"x")
    producer.flush(10)
    latencies: list[float] = []

    def one(i: int) -> None:
        began = time.perf_counter()
        producer.send("bench", f"k{i}", b"x" * size)
        getattr(producer, way)(10)
        latencies.append(time.perf_counter() - began)

    greenlets = []
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(records):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            gevent.sleep(delay)
        greenlets.append(gevent.spawn(one, i))
    gevent.joinall(greenlets)
    per_request = producer.client.metrics()["producer-metrics"]["records-per-request-avg"]
    producer.close()
    ms = sorted(1000 * x for x in latencies)
    return {"way": way, "p50_ms": round(ms[len(ms) // 2], 1), "p95_ms": round(ms[int(len(ms) * 0.95)], 1),
            "p99_ms": round(ms[int(len(ms) * 0.99)], 1), "max_ms": round(ms[-1], 1),
            "cpu_s": round(time.process_time() - cpu, 2), "records_per_request": round(per_request, 2),
            "load_1m": float(Path("/proc/loadavg").read_text().split()[0])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=500.0, help="records/s (default 500)")
    ap.add_argument("--records", type=int, default=5000, help="records per way and round (default 5000)")
    ap.add_argument("--size", type=int, default=300, help="bytes per record (default 300)")
    ap.add_argument("--partitions", type=int, default=6, help="of the topic (default 6)")
    ap.add_argument("--rounds", type=int, default=2, help="alternations of the two ways (default 2)")
    a = ap.parse_args()
    kafka = KafkaServer(Path(tempfile.mkdtemp(prefix="qaflow-bench-producer-")) / "kafka")
    kafka.start()
    try:
        bus = KafkaBus(f"kafka://{kafka.bootstrap}")
        bus.start()
        bus.ensure_topics([TopicSpec("bench", a.partitions, 3_600_000)])
        for _ in range(a.rounds):
            for way in WAYS:
                print(json.dumps(measure(bus, way, a.rate, a.records, a.size)), flush=True)
    finally:
        kafka.stop()


if __name__ == "__main__":
    main()
