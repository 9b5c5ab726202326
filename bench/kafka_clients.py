"""kafka-python against confluent-kafka (librdkafka): CPU to produce and consume the same records.

Issue 13, item 2: about half of the llm-worker's and the score-worker's CPU samples were in
kafka-python's own threads. This measures what a C client would cost instead, on the same
local broker and the same records, side by side: each client, in turn (alternating, ``--rounds``
times), produces ``--records`` records of ``--size`` bytes with qaflow's producer settings
(``acks=all``, idempotent, ``linger.ms`` 5, one flush at the end) to a fresh topic of 3
partitions, then consumes them back in a fresh group (manual commit after each poll of up to
500 records, as a worker does). Each run is a child process; its CPU (user + system, every
thread: librdkafka's and kafka-python's I/O threads included) is taken from the start of the
work to its end, imports and connecting excluded. The broker's CPU in the same window is
reported beside it. confluent-kafka is not a qaflow dependency: install it into the venv only
to run this (``uv pip install --python .venv/bin/python confluent-kafka``).

    .venv/bin/python bench/kafka_clients.py --records 20000 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "kafka_clients.json"
CLIENTS = ("kafka-python", "confluent-kafka")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def value(i: int, size: int) -> bytes:
    head = f'{{"v":1,"i":{i},"text":"'.encode()
    return head + b"x" * max(0, size - len(head) - 2) + b'"}'


# -- the child: one client, one direction ---------------------------------------------------
def produce(client: str, bootstrap: str, topic: str, n: int, size: int) -> dict[str, float]:
    values = [value(i, size) for i in range(n)]
    keys = [uuid.uuid4().hex.encode() for _ in range(n)]
    if client == "kafka-python":
        from kafka import KafkaProducer

        p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
        p.send(topic, b"warm-up").get(30)  # metadata and connection outside the measure
        cpu0, t0 = time.process_time(), time.monotonic()
        futures = [p.send(topic, key=k, value=v) for k, v in zip(keys, values, strict=True)]
        p.flush(120)
        failed = sum(1 for f in futures if not f.succeeded())
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
        p.close()
    else:
        from confluent_kafka import Producer

        errors: list[Any] = []
        q = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
        q.produce(topic, b"warm-up")
        q.flush(30)
        cpu0, t0 = time.process_time(), time.monotonic()
        for k, v in zip(keys, values, strict=True):
            while True:
                try:
                    q.produce(topic, v, k, on_delivery=lambda err, _msg: err and errors.append(err))
                    break
                except BufferError:  # local queue full: serve delivery reports, then go on
                    q.poll(0.01)
            q.poll(0)
        q.flush(120)
        failed = len(errors)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    return {"cpu_s": cpu, "wall_s": wall, "failed": failed}


def consume(client: str, bootstrap: str, topic: str, n: int) -> dict[str, float]:
    group = f"bench-{uuid.uuid4().hex[:8]}"
    got = 0
    if client == "kafka-python":
        from kafka import KafkaConsumer

        c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                          auto_offset_reset="earliest")
        cpu0, t0 = time.process_time(), time.monotonic()
        deadline = t0 + 120
        while got < n and time.monotonic() < deadline:
            batches = c.poll(timeout_ms=500, max_records=500)
            got += sum(len(v) for v in batches.values())
            if batches:
                c.commit()
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
        c.close(autocommit=False)
    else:
        from confluent_kafka import Consumer

        d = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                      "auto.offset.reset": "earliest"})
        d.subscribe([topic])
        cpu0, t0 = time.process_time(), time.monotonic()
        deadline = t0 + 120
        while got < n and time.monotonic() < deadline:
            msgs = d.consume(500, 0.5)
            got += sum(1 for m in msgs if m.error() is None)
            if msgs:
                d.commit(asynchronous=False)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
        d.close()
    return {"cpu_s": cpu, "wall_s": wall, "received": got}


def child(a: argparse.Namespace) -> int:
    if a.direction == "produce":
        out = produce(a.client, a.bootstrap, a.topic, a.records, a.size)
    else:
        out = consume(a.client, a.bootstrap, a.topic, a.records)
    print(json.dumps(out))
    return 0


# -- the parent: broker, topics, alternation -------------------------------------------------
def run_child(client: str, direction: str, bootstrap: str, topic: str, a: argparse.Namespace,
              broker_pid: int | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--client", client, "--direction", direction, "--bootstrap",
           bootstrap, "--topic", topic, "--records", str(a.records), "--size", str(a.size)]
    load0 = os.getloadavg()[0]
    broker0 = proc_cpu_s(broker_pid) if broker_pid else 0.0
    out = subprocess.run(cmd, capture_output=True, check=True, timeout=600)
    result: dict[str, Any] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    # The broker's CPU over the whole child (start-up included), so only roughly the work's.
    result["broker_cpu_s"] = round(proc_cpu_s(broker_pid) - broker0, 3) if broker_pid else None
    result["load_before"], result["load_after"] = round(load0, 2), round(os.getloadavg()[0], 2)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=20_000, help="Records per run (default 20000)")
    p.add_argument("--size", type=int, default=700, help="Bytes per record (default 700, about a question)")
    p.add_argument("--rounds", type=int, default=2, help="Alternations of the two clients (default 2)")
    p.add_argument("--bootstrap", help="host:port of a Kafka broker (default: start one)")
    p.add_argument("--output", type=Path, default=RESULTS, help="JSON result path ('-' for none)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--client", choices=CLIENTS, help=argparse.SUPPRESS)
    p.add_argument("--direction", choices=("produce", "consume"), help=argparse.SUPPRESS)
    p.add_argument("--topic", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        return child(a)

    runs: dict[str, list[dict[str, Any]]] = {f"{c} {d}": [] for c in CLIENTS for d in ("produce", "consume")}
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="qaflow-bench-kafka-") as tmp:
        broker_pid = None
        bootstrap = a.bootstrap
        if bootstrap is None:
            from qaflow.devstack import KafkaServer

            kafka = KafkaServer(Path(tmp) / "kafka")
            kafka.start()
            stack.callback(kafka.stop)
            bootstrap, broker_pid = kafka.bootstrap, kafka.pid
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        stack.callback(admin.close)
        for r in range(a.rounds):
            order = CLIENTS if r % 2 == 0 else CLIENTS[::-1]
            for client in order:
                topic = f"bench-clients-{uuid.uuid4().hex[:8]}"
                admin.create_topics([NewTopic(topic, 3, 1)])
                time.sleep(1.0)
                for direction in ("produce", "consume"):
                    res = run_child(client, direction, bootstrap, topic, a, broker_pid)
                    runs[f"{client} {direction}"].append(res)
                    print(f"{client} {direction}: {res}", file=sys.stderr, flush=True)
    per10k = 10_000 / a.records
    summary = {
        name: {
            "client_cpu_s_per_10k": round(statistics.median(r["cpu_s"] for r in rs) * per10k, 3),
            "broker_cpu_s_per_10k": round(statistics.median(r["broker_cpu_s"] or 0 for r in rs) * per10k, 3),
            "records_per_s": round(a.records / statistics.median(r["wall_s"] for r in rs)),
            "loads": [(r["load_before"], r["load_after"]) for r in rs],
        }
        for name, rs in runs.items()
    }
    result = {"records": a.records, "size": a.size, "rounds": a.rounds, "cpus": os.cpu_count(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "summary": summary, "runs": runs}
    if str(a.output) != "-":
        a.output.parent.mkdir(parents=True, exist_ok=True)
        a.output.write_text(json.dumps(result, indent=2) + "\n")
    print("| client, direction | client CPU s / 10k records | broker CPU s / 10k | records/s | load |")
    print("|---|---|---|---|---|")
    for name, s in summary.items():
        print(f"| {name} | {s['client_cpu_s_per_10k']} | {s['broker_cpu_s_per_10k']} | {s['records_per_s']} | "
              f"{s['loads']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
