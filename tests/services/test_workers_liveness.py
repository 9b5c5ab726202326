"""Worker services staying members of their group and riding out a broker restart, as processes
on real Kafka."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from qaflow.core import topics
from qaflow.core.errors import ErrorClass
from qaflow.core.messages import QuestionMessage, ResultMessage, RetryMessage, Status
from qaflow.devstack import KafkaServer
from qaflow.llm.fake_server import FakeLlmServer
from tests.conftest import _serve
from tests.services.test_workers_poison import statuses, wait_for
from tests.services.test_workers_processes import REFERENCE, Harness, metric

pytestmark = pytest.mark.integration


def test_a_saturated_llm_worker_keeps_its_group_through_calls_longer_than_the_poll_interval(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    """Issue 9: max.poll.interval.ms 10 s, one slot, an LLM answering in 15 s: one question
    cost 10 calls (evicted on every call). It must cost at most 2."""
    h = Harness(kafka_bootstrap, f"{unique_name}.", tmp_path / "logs")
    q = QuestionMessage.new("Why is the sky blue, slowly?", "", REFERENCE)
    try:
        with FakeLlmServer(latency_ms=15_000) as fake:
            h.send(topics.QUESTIONS, q.question_id, q.encode())
            worker = h.start("llm-worker", QAFLOW_LLM_PROVIDER="ollama", QAFLOW_LLM_BASE_URL=fake.url,
                             QAFLOW_LLM_CONCURRENCY="1", QAFLOW_KAFKA_MAX_POLL_INTERVAL_MS="10000",
                             QAFLOW_LLM_TIMEOUT_S="40")
            answers = h.collect([topics.ANSWERS], lambda got: bool(got), timeout_s=60)
            assert [r.key for r in answers] == [q.question_id]
            time.sleep(25)  # long enough for an evicted member to take the question again, and again
            calls = fake.stats()["total"]
            lost = metric(worker.url, "qaflow_partitions_lost_total")
            refused = metric(worker.url, "qaflow_commit_failures_total")
            assert worker.running()
            assert worker.stop(grace_s=20) == 0
        print(f"[liveness] one question, 15 s LLM, max.poll.interval.ms 10 s: {calls} LLM call(s), "
              f"{lost:g} eviction(s), {refused:g} refused commit(s)")
        assert calls <= 2, f"{calls} LLM calls for one question"
        assert lost == 0 and refused == 0
    finally:
        h.close()


@pytest.fixture
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaServer]:
    """A broker of this test's own, since the test stops it (the session's broker is shared)."""
    yield from _serve(KafkaServer(tmp_path_factory.mktemp("kafka-restart")))


def results(prefix: str, n: int) -> list[ResultMessage]:
    out = []
    for i in range(n):
        q = QuestionMessage.new(f"{prefix} {i}?", "", REFERENCE)
        out.append(ResultMessage(question_id=q.question_id, status=Status.VALIDATED, title=q.title,
                                 reference_answer=REFERENCE, answer="An answer.", score=0.9, best_generation=1,
                                 generations=1, model="m", submitted_at=q.submitted_at))
    return out


def retries(prefix: str, n: int, due: float) -> list[RetryMessage]:
    return [RetryMessage(question=QuestionMessage.new(f"{prefix} {i}?", "", REFERENCE),
                         error_class=ErrorClass.OVERLOAD, error="503", not_before=due) for i in range(n)]


class ReadyWatch:
    """Polls /readyz of some services in the background and remembers every status seen."""

    def __init__(self, urls: list[str]) -> None:
        self.seen: dict[str, set[int]] = {u: set() for u in urls}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.3):
            for url in self.seen:
                try:
                    self.seen[url].add(requests.get(url + "/readyz", timeout=2).status_code)
                except requests.RequestException:
                    self.seen[url].add(0)

    def __enter__(self) -> ReadyWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_storage_writer_and_retry_worker_ride_out_a_broker_restart(
    own_broker: KafkaServer, unique_name: str, tmp_path: Path
) -> None:
    store_url = f"sqlite:///{tmp_path / 'q.db'}"
    h = Harness(own_broker.bootstrap, f"{unique_name}.", tmp_path / "logs", store_url=store_url)
    try:
        before = results("Stored before", 5)
        released_before = retries("Retried before", 5, due=0)
        # Due while the broker is down: released (published) only once it is back.
        released_during = retries("Retried during", 5, due=time.time() + 25)
        for m in (*before, *released_before, *released_during):
            topic = topics.RESULTS if isinstance(m, ResultMessage) else topics.RETRY_OVERLOAD
            h.send(topic, m.question_id, m.encode())
        common = {"QAFLOW_KAFKA_MAX_BLOCK_MS": "5000", "QAFLOW_KAFKA_REQUEST_TIMEOUT_MS": "5000",
                  "QAFLOW_KAFKA_DELIVERY_TIMEOUT_MS": "30000"}
        writer = h.start("storage-writer", **common)
        retry = h.start("retry-worker", **common)
        procs = [writer, retry]
        writer.wait_ready(60)
        retry.wait_ready(60)
        ids = [m.question_id for m in before]
        wait_for("the first results stored", lambda: None not in statuses(store_url, ids).values(), procs)
        first = h.collect([topics.QUESTIONS], lambda got: len({r.key for r in got}) >= 5, timeout_s=60)
        assert {r.key for r in first} == {m.question_id for m in released_before}
        # In flight when the broker stops: the writer is polling and committing batches.
        burst = results("Stored around the stop", 1500)
        for m in burst:
            h.producer.send(topics.RESULTS, m.question_id, m.encode())
        h.producer.flush()
        h.producer.close()  # the test's own producer would only complain while the broker is away

        with ReadyWatch([writer.url, retry.url]) as watch:
            own_broker.stop()
            down_until = time.monotonic() + 20
            while time.monotonic() < down_until:
                for p in procs:
                    assert p.running(), f"{p.name} died with the broker down:\n{p.tail(40)}"
                time.sleep(0.5)
            own_broker.start_in_place()
            h.producer = h.bus.producer()
            h.producer.start()
            after = results("Stored after", 5)
            for m in after:
                h.send(topics.RESULTS, m.question_id, m.encode())
            ids = [m.question_id for m in (*before, *burst, *after)]
            wait_for("the results sent around and after the restart stored",
                     lambda: None not in statuses(store_url, ids).values(), procs, timeout_s=120)
            wanted = {m.question_id for m in released_during}
            later = h.collect([topics.QUESTIONS], lambda got: {r.key for r in got} >= wanted, timeout_s=120)
            assert {r.key for r in later} >= wanted
            deadline = time.monotonic() + 30
            while not all(requests.get(p.url + "/readyz", timeout=2).status_code == 200 for p in procs):
                assert time.monotonic() < deadline, "not ready again after the broker came back"
                time.sleep(0.5)
        for p in procs:
            assert p.running() and p.starts == 1, f"{p.name} was restarted or died:\n{p.tail(40)}"
        assert all(503 in seen for seen in watch.seen.values()), watch.seen  # not ready while the broker was away
        for p in procs:
            assert p.stop(grace_s=20) == 0
    finally:
        h.close()


def test_a_connection_error_out_of_poll_leaves_the_loop_up_and_not_ready_until_it_passes(
    kafka_bootstrap: str, unique_name: str
) -> None:
    """Issue 10: ``KafkaConnectionError`` (ECONNREFUSED) out of ``consumer.poll`` ended the
    storage-writer. Here kafka-python's poll raises it three times, as it does while a broker
    restarts; the loop must stay up, report not ready, then ready again."""
    import kafka.errors as kerrors

    from qaflow.bus.kafka import KafkaBus
    from qaflow.core.settings import BackendSettings
    from qaflow.pipeline.worker import Worker
    from qaflow.services.boot import Guarded
    from qaflow.services.probes import Probes
    from qaflow.services.runner import run_worker

    url = f"kafka://{kafka_bootstrap}"
    bus = KafkaBus(url, BackendSettings(bus_url=url, kafka_client="kafka-python"))  # its poll is patched below
    bus.ensure_topics([topics.TopicSpec(f"{unique_name}.t", 1)])
    consumer = bus.consumer(f"{unique_name}.g", [f"{unique_name}.t"])
    worker = Worker("storage", consumer, bus.producer(), lambda batch: [])
    failures = {"left": 3}
    probes = Probes(0, host="127.0.0.1")
    stop = threading.Event()
    outcome: dict[str, object] = {}

    def start_then_break() -> None:
        Worker.start(worker)
        real_poll = consumer.client.poll

        def flaky_poll(*args: object, **kwargs: object) -> object:
            if failures["left"]:
                failures["left"] -= 1
                raise kerrors.KafkaConnectionError("111 ECONNREFUSED")
            return real_poll(*args, **kwargs)

        consumer.client.poll = flaky_poll  # type: ignore[method-assign]

    worker.start = start_then_break  # type: ignore[method-assign]

    def run() -> None:
        try:
            outcome["code"] = run_worker("storage-writer", Guarded("storage", worker), probes, stop, 5.0)
        except BaseException as exc:  # old behaviour: the loop ends with the error
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    seen: set[int] = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (failures["left"] == 0 and 200 in seen and 503 in seen):
        assert thread.is_alive(), f"the loop ended: {outcome}"
        with contextlib.suppress(requests.RequestException):
            seen.add(requests.get(f"http://127.0.0.1:{probes.port}/readyz", timeout=2).status_code)
        time.sleep(0.05)
    assert thread.is_alive(), f"the loop ended: {outcome}"
    stop.set()
    thread.join(20)
    assert outcome == {"code": 0}
    assert failures["left"] == 0 and 503 in seen and 200 in seen
