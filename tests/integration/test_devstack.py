"""The local servers really serve: a record through Kafka, a row through PostgreSQL, a key
through Redis, and a detached stack brought up by one process and down by another."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg2
import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from qaflow.devstack import DevStack, down, status
from qaflow.devstack.ports import is_listening
from tests.pg import pg_rows

pytestmark = pytest.mark.integration


def test_kafka_produce_then_consume(kafka_bootstrap: str, unique_name: str) -> None:
    topic = f"{unique_name}.events"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        assert topic in admin.list_topics()
    finally:
        admin.close()

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        sent = producer.send(topic, key=b"q-1", value=b"hello").get(timeout=30)
    finally:
        producer.close()
    assert (sent.topic, sent.partition, sent.offset) == (topic, 0, 0)

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=unique_name,
        auto_offset_reset="earliest",
        consumer_timeout_ms=30_000,
    )
    try:
        record = next(iter(consumer))
        consumer.commit()
        committed = consumer.committed(TopicPartition(topic, 0))
    finally:
        consumer.close()
    assert (record.key, record.value, record.offset) == (b"q-1", b"hello", 0)
    assert committed == 1


def test_postgres_table_round_trip(pg_url: str) -> None:
    conn = psycopg2.connect(pg_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT current_database()")
            assert cur.fetchone()[0] == pg_url.rsplit("/", 1)[1] != "postgres"
            cur.execute("CREATE TABLE answers (question_id text PRIMARY KEY, score real)")
            cur.execute("INSERT INTO answers VALUES (%s, %s)", ("q-1", 0.91))
            cur.execute("SELECT question_id, score FROM answers")
            assert cur.fetchall() == [("q-1", pytest.approx(0.91))]
    finally:
        conn.close()


def test_redis_set_get_under_prefix(redis_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(f"{redis_prefix}answer", "42")
        assert client.get(f"{redis_prefix}answer") == b"42"
        assert client.keys(f"{redis_prefix}*") == [f"{redis_prefix}answer".encode()]
    finally:
        client.close()


def test_up_in_one_process_down_in_another(tmp_path: Path, require_servers: Callable[[DevStack], None]) -> None:
    state_dir = tmp_path / "devstack"
    require_servers(DevStack(state_dir))

    # `up` runs in a child that exits: the servers must outlive it.
    cmd = [sys.executable, "-m", "qaflow.devstack", "up", "--state-dir", str(state_dir)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
        assert done.returncode == 0, done.stderr
        state = status(state_dir)
        assert state["running"], state
        addresses = state["addresses"]
        _assert_answers(addresses)
        ports = [info["port"] for info in state["servers"].values()]
        assert all(is_listening(port) for port in ports)
    finally:
        stopped = down(state_dir)

    assert stopped == {"kafka": True, "postgres": True, "redis": True}
    assert status(state_dir) == {"running": False, "state_file": str(state_dir / "state.json")}
    deadline = time.monotonic() + 5
    while any(is_listening(port) for port in ports) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(is_listening(port) for port in ports)


def _assert_answers(addresses: dict[str, str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=addresses["kafka_bootstrap"])
    try:
        assert isinstance(admin.list_topics(), list)
    finally:
        admin.close()
    assert pg_rows(addresses["postgres_url"], "SELECT 1") == [(1,)]
    client = redis.Redis.from_url(addresses["redis_url"])
    try:
        assert client.ping() is True
    finally:
        client.close()
