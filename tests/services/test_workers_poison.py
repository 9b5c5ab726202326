"""A poison record for every consumer stage, on real Kafka, with the services as processes.

Each test sends a record whose handling raises (not one that fails to decode) and records
behind it. The service stays up, the poison record is dead-lettered and its question ends
``failed`` in the store (the storage-writer runs too), and the records behind it are handled.
Before per-record isolation each of these services died on the record, and died again on it
after every restart.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from qaflow.core import topics
from qaflow.core.errors import ErrorClass
from qaflow.core.messages import (
    AnswerMessage,
    QuestionMessage,
    ResultMessage,
    RetryMessage,
    ScoreRecord,
    Status,
)
from qaflow.devstack import PostgresServer
from qaflow.store import open_store
from tests.services.test_workers_processes import REFERENCE, Harness, metric

pytestmark = pytest.mark.integration

POISON_HOOK = str(Path(__file__).resolve().parents[1] / "poison_hook")  # see its sitecustomize.py
REFUSE_TRIGGER = """
CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.answer LIKE '%POISON%' THEN
    RAISE EXCEPTION 'refused by a check constraint on answer' USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse_poison_results BEFORE INSERT OR UPDATE ON results
  FOR EACH ROW EXECUTE FUNCTION refuse_poison();
CREATE TRIGGER refuse_poison_attempts BEFORE INSERT OR UPDATE ON attempts
  FOR EACH ROW EXECUTE FUNCTION refuse_poison();
"""


@pytest.fixture
def sqlite_harness(kafka_bootstrap: str, unique_name: str, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(kafka_bootstrap, f"{unique_name}.", tmp_path / "logs", store_url=f"sqlite:///{tmp_path / 'q.db'}")
    yield h
    h.close()


def wait_for(what: str, check: Callable[[], bool], procs: list[Any], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        for p in procs:
            assert p.running(), f"{p.name} died:\n{p.tail(40)}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def statuses(store_url: str, ids: list[str]) -> dict[str, str | None]:
    store = open_store(store_url)
    store.start()
    try:
        out: dict[str, str | None] = {}
        for qid in ids:
            r = store.get_result(qid)
            out[qid] = None if r is None else r.status.value
        return out
    finally:
        store.close()


def failed_reason(store_url: str, qid: str) -> str:
    store = open_store(store_url)
    store.start()
    try:
        r = store.get_result(qid)
        assert r is not None and r.error
        return r.error
    finally:
        store.close()


class _Stub(BaseHTTPRequestHandler):
    reply: Callable[[str, Any], tuple[int, Any]]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, body: Any) -> None:
        status, payload = type(self).reply(self.path, body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer(None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self._answer(json.loads(self.rfile.read(length) or b"null"))


def stub_server(reply: Callable[[str, Any], tuple[int, Any]]) -> tuple[ThreadingHTTPServer, str]:
    handler = type("Handler", (_Stub,), {"reply": staticmethod(reply)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def result(title: str, answer: str) -> ResultMessage:
    q = QuestionMessage.new(title, "", REFERENCE)
    return ResultMessage(question_id=q.question_id, status=Status.VALIDATED, title=q.title, reference_answer=REFERENCE,
                         answer=answer, score=0.9, best_generation=1, generations=1, model="m",
                         submitted_at=q.submitted_at)


def test_storage_writer_dead_letters_a_row_postgresql_refuses_and_writes_the_rest(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, postgres_server: PostgresServer, pg_url: str
) -> None:
    harness = Harness(kafka_bootstrap, f"{unique_name}.", tmp_path / "logs", store_url=pg_url)
    try:
        _storage_writer_poison(harness, pg_url)
    finally:
        harness.close()


def _storage_writer_poison(harness: Harness, pg_url: str) -> None:
    """A row the database refuses (a constraint the data breaks; a NUL used to do this before the
    text policy removed it at every entrance): the writer dead-letters it and writes the rest."""
    store = open_store(pg_url)
    store.start()  # creates the tables
    store.close()
    conn = psycopg2.connect(pg_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(REFUSE_TRIGGER)
    finally:
        conn.close()
    poison = result("Why does bread go stale?", "Starch retrogrades. POISON Then it dries.")
    history = ScoreRecord(question_id=poison.question_id, generation=1, answer=poison.answer or "", score=0.9,
                          model="m", scorer={"name": "lexical"}, decision="validated")
    good = [result(f"Good question {i}?", f"A plain answer {i}.") for i in range(6)]
    harness.send(topics.SCORES, history.question_id, history.encode())
    harness.send(topics.RESULTS, poison.question_id, poison.encode())
    for r in good:
        harness.send(topics.RESULTS, r.question_id, r.encode())
    writer = harness.start("storage-writer", QAFLOW_STORAGE_BATCH_SIZE="50")
    ids = [poison.question_id, *(r.question_id for r in good)]
    wait_for("every result stored", lambda: None not in statuses(pg_url, ids).values(), [writer])
    got = statuses(pg_url, ids)
    assert got[poison.question_id] == "failed"
    assert all(got[r.question_id] == "validated" for r in good)
    assert "refused by a check constraint" in failed_reason(pg_url, poison.question_id)
    conn = psycopg2.connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT stage, reason FROM dead_letters WHERE question_id = %s", (poison.question_id,))
            rows = cur.fetchall()
    finally:
        conn.close()
    assert rows and all(stage == "storage" and "check constraint" in reason for stage, reason in rows)
    assert writer.running()
    # result and history; counted when the step that stored them ends, just after the rows appear
    wait_for("both dead letters counted",
             lambda: metric(writer.url, "qaflow_records_dead_lettered_total", stage="storage") >= 2, [writer], 20)
    assert metric(writer.url, "qaflow_records_dead_lettered_total", stage="storage") == 2
    assert writer.stop(grace_s=15) == 0


def test_llm_worker_dead_letters_a_record_its_handler_raises_on_and_answers_the_rest(
    sqlite_harness: Harness,
) -> None:
    h = sqlite_harness

    def reply(path: str, body: Any) -> tuple[int, Any]:
        text = "Because of Rayleigh scattering."
        return 200, {"id": "x", "object": "chat.completion", "model": "m",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}}

    server, url = stub_server(reply)
    poison = QuestionMessage.new("Loop forever?", "", REFERENCE)
    good = [QuestionMessage.new(f"Why is the sky blue, take {i}?", "", REFERENCE) for i in range(5)]
    try:
        for q in (poison, *good):
            h.send(topics.QUESTIONS, q.question_id, q.encode())
        worker = h.start("llm-worker", QAFLOW_LLM_PROVIDER="openai", QAFLOW_LLM_BASE_URL=url,
                         QAFLOW_LLM_CONCURRENCY="2", PYTHONPATH=POISON_HOOK, POISON_MARK="Loop")
        writer = h.start("storage-writer")
        answered = h.collect([topics.ANSWERS], lambda got: len({r.key for r in got}) >= len(good))
        assert {r.key for r in answered} == {q.question_id for q in good}
        store_url = h.backends.store_url
        wait_for("the poison question failed", lambda: statuses(store_url, [poison.question_id])[
            poison.question_id] == "failed", [worker, writer])
        reason = failed_reason(store_url, poison.question_id)
        assert "llm stage" in reason and "injected handler fault" in reason
        assert worker.running() and writer.running()
        assert metric(worker.url, "qaflow_records_dead_lettered_total", stage="llm") == 1
        assert worker.stop(grace_s=15) == 0
    finally:
        server.shutdown()
        server.server_close()


def test_score_worker_dead_letters_an_answer_the_scorer_refuses_and_scores_the_rest(
    sqlite_harness: Harness,
) -> None:
    h = sqlite_harness

    def reply(path: str, body: Any) -> tuple[int, Any]:
        scorer = {"name": "stub", "version": "1"}
        if path == "/v1/info":
            return 200, {"scorer": scorer}
        pairs = body["pairs"]
        if any("POISON" in p["candidate"] for p in pairs):
            return 422, {"error": "candidate contains a token the model cannot embed"}
        return 200, {"scores": [0.95] * len(pairs), "scorer": scorer}

    server, url = stub_server(reply)

    def answer(title: str, text: str) -> AnswerMessage:
        return AnswerMessage(question=QuestionMessage.new(title, "", REFERENCE), answer=text, model="m",
                             provider="p", latency_ms=1)

    poison = answer("Scored?", "POISON answer")
    good = [answer(f"Scored {i}?", f"A fine answer {i}.") for i in range(6)]
    try:
        for a in (poison, *good):
            h.send(topics.ANSWERS, a.question_id, a.encode())
        score = h.start("score-worker", QAFLOW_SCORER="remote", QAFLOW_SCORER_URL=url, QAFLOW_THRESHOLD="0.8",
                        QAFLOW_SCORER_TIMEOUT_S="5")
        writer = h.start("storage-writer")
        ids = [poison.question_id, *(a.question_id for a in good)]
        store_url = h.backends.store_url
        wait_for("every question terminal", lambda: None not in statuses(store_url, ids).values(), [score, writer])
        got = statuses(store_url, ids)
        assert got[poison.question_id] == "failed"
        assert all(got[a.question_id] == "validated" for a in good)
        assert "HTTP 422" in failed_reason(store_url, poison.question_id)
        assert score.running()
        assert metric(score.url, "qaflow_records_dead_lettered_total", stage="score") == 1
        assert score.stop(grace_s=15) == 0
    finally:
        server.shutdown()
        server.server_close()


def test_retry_worker_dead_letters_a_retry_with_no_due_time_and_releases_the_rest(sqlite_harness: Harness) -> None:
    h = sqlite_harness
    poison_q = QuestionMessage.new("When is NaN due?", "", REFERENCE)
    raw = RetryMessage(question=poison_q, error_class=ErrorClass.OVERLOAD, error="503", not_before=0).encode()
    raw = raw.replace(b'"not_before":0.0', b'"not_before":NaN')  # valid for the schema, never due
    assert b"NaN" in raw
    h.send(topics.RETRY_OVERLOAD, poison_q.question_id, raw)
    retry = h.start("retry-worker", QAFLOW_MAX_DELIVERY_ATTEMPTS="3")
    writer = h.start("storage-writer")
    retry.wait_ready(60)
    # Let the worker hold the poison record before the good ones arrive behind it.
    wait_for("the poison record taken", lambda: committed_or_held(retry), [retry])
    good = [QuestionMessage.new(f"Retry me {i}?", "", REFERENCE) for i in range(4)]
    for q in good:
        h.send(topics.RETRY_OVERLOAD, q.question_id,
               RetryMessage(question=q, error_class=ErrorClass.OVERLOAD, error="503", not_before=0).encode())
    released = h.collect([topics.QUESTIONS], lambda got: len({r.key for r in got}) >= len(good), timeout_s=30)
    assert {r.key for r in released} == {q.question_id for q in good}
    store_url = h.backends.store_url
    wait_for("the poison question failed",
             lambda: statuses(store_url, [poison_q.question_id])[poison_q.question_id] == "failed", [retry, writer])
    assert "not_before is nan" in failed_reason(store_url, poison_q.question_id)
    assert retry.running()
    assert retry.stop(grace_s=15) == 0


def committed_or_held(proc: Any) -> bool:
    """True once the retry-worker consumed its first record (held, released or dead-lettered)."""
    return (metric(proc.url, "qaflow_retry_waiting") + metric(proc.url, "qaflow_records_dead_lettered_total")
            + metric(proc.url, "qaflow_retry_released_total")) >= 1
