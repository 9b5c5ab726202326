"""The storage-writer's loop with records another producer wrote with NUL or a lone surrogate
(issue 9): on the old main PostgreSQL refused the NUL ("A string literal cannot contain NUL
(0x00) characters"), the writer died, and every restart died on the same record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from qaflow.bus.memory import MemoryBus
from qaflow.cache.memory import MemoryCache
from qaflow.core import topics
from qaflow.core.messages import QuestionMessage, ResultMessage, ScoreRecord, Status
from qaflow.pipeline.outputs import Output
from qaflow.pipeline.storage import StorageStage
from qaflow.pipeline.worker import Decoded, Worker
from qaflow.store import open_store
from qaflow.store.sql import SqlStore

REFERENCE = "Its starch recrystallises."
REPLACEMENT = "\ufffd"  # what the text policy puts for a lone surrogate


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    url = f"sqlite:///{tmp_path / 'q.db'}" if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
    s = open_store(url)
    assert isinstance(s, SqlStore)
    s.start()
    yield s
    s.close()


def raw_result(title: str, answer_escape: str) -> tuple[str, bytes]:
    """A result record as a foreign producer wrote it: a raw JSON escape spliced into the answer."""
    q = QuestionMessage.new(title, "", REFERENCE)
    r = ResultMessage(question_id=q.question_id, status=Status.VALIDATED, title=title, reference_answer=REFERENCE,
                      answer="PLACEHOLDER", score=0.9, best_generation=1, generations=1, model="m",
                      submitted_at=1_700_000_000.0)
    text = r.encode().decode("utf-8").replace("PLACEHOLDER", f"Stale{answer_escape} bread")
    return q.question_id, text.encode("utf-8")


def test_the_storage_writer_stores_nul_and_surrogate_records_and_goes_on(bus: MemoryBus, store: SqlStore) -> None:
    stage = StorageStage(store, MemoryCache(), 60)

    def write(batch: list[Decoded]) -> list[Output]:
        stage.handle_batch([m for _, m in batch])
        return []

    worker = Worker("storage", bus.consumer("storage", [topics.RESULTS, topics.SCORES, topics.DEAD_LETTER]),
                    bus.producer(), write, inline_dead_letters=True)
    producer = bus.producer()
    nul_id, nul = raw_result("Why does bread go stale?", "\\u0000")
    sur_id, sur = raw_result("Why is toast crisp?", "\\ud800")
    plain_id, plain = raw_result("Why is the sky blue?", "")
    attempt = json.loads(ScoreRecord(question_id=nul_id, generation=1, answer="x", score=0.9, model="m",
                                     scorer={"name": "x"}, decision="validated").encode())
    attempt["answer"] = "a\x00b"
    for topic, key, value in ((topics.RESULTS, nul_id, nul), (topics.RESULTS, sur_id, sur),
                              (topics.SCORES, nul_id, json.dumps(attempt).encode()),
                              (topics.RESULTS, plain_id, plain)):
        producer.send(topic, key, value)
    producer.flush()
    worker.start()
    handled = 0
    for _ in range(20):
        handled += worker.step(0.05)
        if handled >= 4:
            break
    worker.close()
    assert handled == 4
    answers = {qid: (r.answer if (r := store.get_result(qid)) else None) for qid in (nul_id, sur_id, plain_id)}
    assert answers == {nul_id: "Stale bread", sur_id: f"Stale{REPLACEMENT} bread", plain_id: "Stale bread"}
    assert [a.answer for a in store.get_attempts(nul_id)] == ["ab"]
    assert store.stats().dead_letters == 0
