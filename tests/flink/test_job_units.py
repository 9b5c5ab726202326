"""The score job's pure pieces, without a cluster: options, Flink keys, decoding, batching, routing, state."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from qaflow.core.errors import ConfigError, ScoringError
from qaflow.core.messages import BestAttempt, DeadLetter, QuestionMessage, ResultMessage, ScoreRecord, decode
from qaflow.core.routing import QuestionState
from qaflow.flinkjob import args as job_args
from qaflow.flinkjob.flinkconf import flink_configuration
from qaflow.flinkjob.records import (
    ORIGIN_NOTE,
    Outcome,
    TopicMap,
    ToScore,
    decode_answer,
    decode_state,
    encode_state,
    route_scored,
    score_batch,
    score_bucket,
    terminal_marker,
)
from qaflow.flinkjob.runner import LocalJob, connector_jar, fetch_jars, latest_checkpoint
from qaflow.pipeline.outputs import Output
from qaflow.pipeline.score import GatePolicy
from qaflow.scoring.lexical import LexicalScorer
from tests.flink.conftest import answer

pytestmark = pytest.mark.flink

BOOT = ["--bootstrap-servers", "k1:9092,k2:9093"]
POLICY = GatePolicy(threshold=0.8, max_generations=3)
IDENTITY = {"name": "lexical", "metric": "token-f1", "version": "2", "tokens": "words+chars"}
REF = "Paris is the capital of France."


# -- options ----------------------------------------------------------------------------------


def test_defaults_and_overrides() -> None:
    cfg = job_args.parse(BOOT, environ={})
    assert cfg.bootstrap_servers == "k1:9092,k2:9093"
    assert cfg.policy == GatePolicy(threshold=0.8, max_generations=3)
    assert cfg.batch_size == 64 and cfg.settings.flink_batch_wait_ms == 1000
    assert cfg.checkpoint_interval_ms is None  # the cluster's, else 10 s
    assert (cfg.settings.flink_starting_offsets == "committed-or-earliest"
            and cfg.settings.flink_delivery_guarantee == "at-least-once")
    assert cfg.topics["qa.answers"] == "qa.answers" and cfg.scorer.scorer == "bertscore"

    cfg = job_args.parse(
        [*BOOT, "--topic-prefix", "t1.", "--results-topic", "done", "--threshold", "0.5", "--batch-size", "16",
         "--checkpoint-interval-s", "2.5", "-D", "rest.port=1234", "--jars", "file:///x.jar"],
        environ={},
    )
    assert cfg.topics["qa.answers"] == "t1.qa.answers" and cfg.topics["qa.results"] == "done"
    assert cfg.policy.threshold == 0.5 and cfg.batch_size == 16 and cfg.checkpoint_interval_ms == 2500
    assert cfg.flink_conf == {"rest.port": "1234"} and cfg.jars == ("file:///x.jar",)


def test_environment_fallbacks_and_precedence() -> None:
    env = {
        "QAFLOW_BUS_URL": "kafka://env-broker:9092",
        "QAFLOW_THRESHOLD": "0.7",
        "QAFLOW_MAX_GENERATIONS": "5",
        "QAFLOW_SCORER": "lexical",
        "QAFLOW_SCORER_BATCH_SIZE": "32",
        "QAFLOW_FLINK_GROUP_ID": "g1",
        "QAFLOW_TOPIC_PREFIX": "p.",
        "QAFLOW_CACHE_DIR": "/tmp/cache",  # a local-run variable the job must tolerate
    }
    cfg = job_args.parse([], environ=env)
    assert cfg.bootstrap_servers == "env-broker:9092" and cfg.policy == GatePolicy(0.7, 5)
    assert cfg.scorer.scorer == "lexical" and cfg.batch_size == 32 and cfg.settings.flink_group_id == "g1"
    assert cfg.topics["qa.scores"] == "p.qa.scores"
    cfg = job_args.parse([*BOOT, "--threshold", "0.9", "--group-id", "g2"], environ=env)
    assert (cfg.policy.threshold == 0.9 and cfg.settings.flink_group_id == "g2"
            and cfg.bootstrap_servers == "k1:9092,k2:9093")


@pytest.mark.parametrize(
    ("argv", "env", "needle"),
    [
        ([], {}, "--bootstrap-servers"),
        (BOOT, {"QAFLOW_TRESHOLD": "0.5"}, "QAFLOW_THRESHOLD"),  # a typo, with the hint
        ([*BOOT, "--threshold", "1.5"], {}, "--threshold: Input should be less than or equal to 1"),  # as typed
        ([*BOOT, "--scorer", "remote"], {}, "QAFLOW_SCORER_URL"),
        ([*BOOT, "--delivery-guarantee", "exactly-once", "--checkpoint-interval-s", "0"], {}, "exactly-once"),
        ([*BOOT, "-D", "novalue"], {}, "KEY=VALUE"),
        (["--bootstrap-servers", "host:notaport"], {}, "host:notaport"),
        (BOOT, {"QAFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "QAFLOW_KAFKA_USERNAME"),
    ],
)
def test_bad_configuration_names_the_culprit(argv: list[str], env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        job_args.parse(argv, environ=env)


def test_sasl_uses_the_shaded_login_module_and_hides_the_password() -> None:
    env = {"QAFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "QAFLOW_KAFKA_USERNAME": "score-job",
           "QAFLOW_KAFKA_PASSWORD": 's3"cret'}
    cfg = job_args.parse(BOOT, environ=env)
    jaas = cfg.kafka_properties["sasl.jaas.config"]
    assert jaas.startswith("org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule")
    assert 'username="score-job"' in jaas and 'password="s3\\"cret";' in jaas
    assert cfg.kafka_properties["sasl.mechanism"] == "SCRAM-SHA-512"
    assert "s3" not in json.dumps(cfg.redacted(), default=str)


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        job_args.parse(["--help"], environ={})
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for action in job_args.parser()._actions:
        assert action.help and len(action.help) > 15, action.option_strings
        assert action.option_strings[-1] in text
    for _, name, _ in job_args._OPTIONS:
        assert f"QAFLOW_{name.upper()}" in text


def test_every_variable_is_known_to_settings() -> None:
    from qaflow.core.settings import known_variables

    for _, name, _ in job_args._OPTIONS:
        assert f"QAFLOW_{name.upper()}" in known_variables()


# -- Flink keys -------------------------------------------------------------------------------


def test_flink_configuration_keys() -> None:
    conf = flink_configuration(job_args.parse([*BOOT, "--batch-size", "48", "--batch-wait-ms", "250"], environ={}))
    assert conf["python.fn-execution.arrow.batch.size"] == "48"
    assert conf["python.fn-execution.bundle.time"] == "250"
    assert conf["python.fn-execution.bundle.size"] == str(4 * 48)  # >= the batch, else Flink shrinks it
    assert conf["execution.checkpointing.externalized-checkpoint-retention"] == "RETAIN_ON_CANCELLATION"
    assert "execution.checkpointing.interval" not in conf  # left to the cluster
    assert "parallelism.default" not in conf and "execution.state-recovery.path" not in conf
    assert conf["table.exec.uid.generation"] == "ALWAYS"

    conf = flink_configuration(job_args.parse(
        [*BOOT, "--checkpoint-interval-s", "5", "--checkpoint-dir", "file:///ck", "--parallelism", "2",
         "--restore-from", "file:///ck/j/chk-3", "--checkpoint-retention", "delete", "--batch-size", "100000",
         "-D", "python.fn-execution.bundle.time=10"], environ={}))
    assert conf["execution.checkpointing.interval"] == "5000 ms"
    assert conf["execution.checkpointing.dir"] == "file:///ck"
    assert conf["execution.checkpointing.externalized-checkpoint-retention"] == "DELETE_ON_CANCELLATION"
    assert conf["parallelism.default"] == "2"
    assert conf["execution.state-recovery.path"] == "file:///ck/j/chk-3"
    assert conf["python.fn-execution.bundle.size"] == "400000"
    assert conf["python.fn-execution.bundle.time"] == "10"  # -D wins


# -- decoding ---------------------------------------------------------------------------------


def test_decode_good_answer() -> None:
    a = answer("Capital of France?", REF, "Paris.")
    got = decode_answer(a.encode().decode(), "t.qa.answers")
    assert got == ToScore(a.question_id, a, "Paris.", REF)


def _dead(out: ToScore | Output) -> DeadLetter:
    assert isinstance(out, Output) and out.topic == "qa.dead-letter"
    return decode(DeadLetter, out.value)


def test_poison_records_become_dead_letters() -> None:
    dl = _dead(decode_answer("{not json", "t.qa.answers"))
    assert "not valid UTF-8 JSON" in dl.reason and ORIGIN_NOTE in dl.reason
    assert dl.origin.topic == "t.qa.answers" and dl.origin.partition is None and dl.payload == "{not json"
    assert dl.question is None and dl.question_id is None

    dl = _dead(decode_answer('{"v": 1, "question": {"question_id": "x1"}, "answer": 3}', "t.qa.answers"))
    assert dl.question_id == "x1" and dl.question is None
    assert _dead(decode_answer("[1, 2]", "a")).reason.startswith("invalid answer: expected a JSON object")
    assert "schema version" in _dead(decode_answer('{"v": 7}', "a")).reason


def test_invalid_answer_with_a_valid_question_goes_to_the_keyed_step() -> None:
    a = answer("Capital of France?", REF, "Paris.")
    raw = a.model_dump(mode="json")
    raw["latency_ms"] = -1
    got = decode_answer(json.dumps(raw), "a")
    assert isinstance(got, ToScore) and got.question_id == a.question_id
    assert got.candidate == got.reference == "" and "latency_ms" in got.error

    blank = answer("Capital of France?", "  ", "Paris.")
    got = decode_answer(blank.encode().decode(), "a")
    assert isinstance(got, ToScore) and "blank" in got.error


# -- batch scoring ----------------------------------------------------------------------------


class FlakyScorer:
    """Lexical scores; a batch with a pair containing ``poison`` fails like a bad model input."""

    name = "flaky"

    def __init__(self, retriable: bool = False) -> None:
        self.retriable = retriable
        self.calls: list[int] = []

    @property
    def identity(self) -> dict[str, str]:
        return {"name": self.name}

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> list[float]:
        self.calls.append(len(candidates))
        if any("poison" in c for c in candidates):
            exc = ScoringError("model choked")
            exc.retriable = self.retriable
            raise exc
        if any("overflow" in c for c in candidates):
            return [1.0000001 if "overflow" in c else math.nan for c in candidates]
        return LexicalScorer().score(candidates, references)


def test_score_batch_one_call_and_skips_decode_errors() -> None:
    scorer = FlakyScorer()
    got = score_batch(scorer, ["Paris is the capital of France.", "", "no overlap"], [REF, "", REF])
    assert scorer.calls == [2]
    assert got.scores[0] == pytest.approx(1.0) and math.isnan(got.scores[1]) and got.scores[2] == 0.0
    assert got.errors == ["", "", ""] and got.identity == {"name": "flaky"}


def test_score_batch_isolates_a_bad_pair() -> None:
    scorer = FlakyScorer()
    got = score_batch(scorer, ["Paris is the capital of France.", "poison pill"], [REF, REF])
    assert scorer.calls == [2, 1, 1]
    assert got.scores[0] == pytest.approx(1.0) and math.isnan(got.scores[1])
    assert got.errors[0] == "" and "model choked" in got.errors[1]


def test_score_batch_lets_retriable_errors_fail_the_job() -> None:
    with pytest.raises(ScoringError):
        score_batch(FlakyScorer(retriable=True), ["poison"], [REF])


def test_score_batch_clamps_and_rejects_non_finite() -> None:
    got = score_batch(FlakyScorer(), ["overflow", "x"], [REF, REF])
    assert got.scores[0] == 1.0 and math.isnan(got.scores[1]) and "nan" in got.errors[1]


# -- routing and state ------------------------------------------------------------------------


def _route(state: QuestionState | None, a, score: float, error: str = ""):
    return route_scored(state, a, score, IDENTITY, error, POLICY, "t.qa.answers")


def test_route_validated_regenerate_exhausted() -> None:
    a = answer("Capital of France?", REF, "Paris.")
    step = _route(None, a, 0.9)
    assert step.outcome is Outcome.VALIDATED and step.state is not None and step.state.terminal
    assert [o.topic for o in step.outputs] == ["qa.scores", "qa.results"]
    assert all(o.key == a.question_id for o in step.outputs)
    assert decode(ScoreRecord, step.outputs[0].value).scorer == IDENTITY

    step = _route(None, a, 0.3)
    assert step.outcome is Outcome.REGENERATED and not step.state.terminal
    again = decode(QuestionMessage, step.outputs[1].value)
    assert again.generation == 2 and again.best and again.best.score == 0.3

    best = BestAttempt(answer="Paris, France.", score=0.7, generation=2, model="m")
    last = answer("Capital of France?", REF, "Lyon.", generation=3, best=best)
    step = _route(QuestionState(last_generation=2), last, 0.1)
    result = decode(ResultMessage, step.outputs[1].value)
    assert step.outcome is Outcome.EXHAUSTED and result.status == "exhausted"
    assert result.answer == "Paris, France." and result.best_generation == 2 and result.generations == 3


def test_route_drops_duplicates_and_keeps_state() -> None:
    a = answer("Capital of France?", REF, "Paris.")
    state = QuestionState(last_generation=1)
    step = _route(state, a, 0.9)
    assert step.outcome is Outcome.DUPLICATE and step.outputs == [] and step.state is state
    done = QuestionState(last_generation=1, terminal=True)
    assert _route(done, answer("Capital of France?", REF, "P", generation=2), 0.9).outcome is Outcome.DUPLICATE


def test_route_failed_ends_the_question_once() -> None:
    a = answer("Capital of France?", REF, "Paris.")
    step = _route(None, a, math.nan, error="scoring failed: model choked")
    assert step.outcome is Outcome.FAILED and step.state == QuestionState(last_generation=1, terminal=True)
    dl = decode(DeadLetter, step.outputs[0].value)
    assert dl.question and dl.question.question_id == a.question_id and "model choked" in dl.reason
    assert step.outputs[0].key == a.question_id
    assert _route(step.state, a, math.nan, error="again").outcome is Outcome.DUPLICATE


def test_state_codec_round_trip() -> None:
    best = BestAttempt(answer="Paris.", score=0.42, generation=2, model="m")
    for state in (QuestionState(), QuestionState(3, best, False), QuestionState(2, None, True)):
        assert decode_state(encode_state(state)) == state
    assert decode_state(None) is None and decode_state("") is None
    assert terminal_marker(QuestionState(3, best, True)) == QuestionState(3, None, True)
    with pytest.raises(ValueError, match="version"):
        decode_state(json.dumps({"v": 99}))


def test_topic_map_and_buckets() -> None:
    topics = TopicMap.build("x.", {"qa.results": "final"})
    assert topics["qa.scores"] == "x.qa.scores" and topics["qa.results"] == "final"
    assert topics.place(Output("qa.scores", "k", b"v")).topic == "x.qa.scores"
    assert [score_bucket(s) for s in (-0.2, 0.0, 0.05, 0.81, 0.999, 1.0)] == ["0", "0", "0", "80", "90", "90"]


# -- local runner -----------------------------------------------------------------------------


def test_latest_checkpoint_needs_metadata(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path) is None
    for job, chk, meta in (("j1", 4, True), ("j1", 5, False), ("j2", 2, True)):
        d = tmp_path / job / f"chk-{chk}"
        d.mkdir(parents=True)
        if meta:
            (d / "_metadata").write_bytes(b"x")
        time.sleep(0.01)
    assert latest_checkpoint(tmp_path.as_uri()) == tmp_path / "j2" / "chk-2"


def test_local_job_command(tmp_path: Path) -> None:
    jar = tmp_path / "c.jar"
    jar.write_bytes(b"jar")
    job = LocalJob([*BOOT, "--threshold", "0.5"], workdir=tmp_path / "w", jars=[jar], python="/py", rest_port=8089)
    cmd = job.command()
    assert cmd[:2] == ["/py", str(Path("flink/score_job.py").resolve())]
    assert cmd[cmd.index("--jars") + 1] == jar.as_uri()
    assert cmd[cmd.index("--checkpoint-dir") + 1] == (tmp_path / "w" / "checkpoints").as_uri()
    assert cmd[cmd.index("--parallelism") + 1] == "1" and "python.executable=/py" in cmd and "rest.port=8089" in cmd
    job_args.parse(cmd[2:], environ={})  # the runner only adds options the job knows
    given = LocalJob([*BOOT, "--parallelism", "2", "--checkpoint-dir=file:///c"], workdir=tmp_path, jars=[jar])
    assert given.command().count("--parallelism") == 1 and given.command().count("--checkpoint-dir=file:///c") == 1
    assert job.environment()["FLINK_LOG_DIR"] == str(tmp_path / "w" / "log")


def test_fetch_jars_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QAFLOW_CACHE_DIR", str(tmp_path))
    jar = connector_jar()
    assert jar.parent == tmp_path / "flink-jars" and jar.name == "flink-sql-connector-kafka-5.0.0-2.2.jar"
    jar.parent.mkdir(parents=True)
    jar.write_bytes(b"cached")
    monkeypatch.setattr("shutil.which", lambda _: pytest.fail("must not download a cached jar"))
    assert fetch_jars() == [jar] and jar.read_bytes() == b"cached"
    assert os.listdir(jar.parent) == [jar.name]


# -- per-record fault isolation ---------------------------------------------------------------


class BrokenTokenizer:
    """A scorer whose model raises a plain ValueError (not a ScoringError) on one input."""

    name = "broken"
    identity = {"name": "broken"}

    def __init__(self) -> None:
        self.calls: list[int] = []

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> list[float]:
        self.calls.append(len(candidates))
        if any("\ufffe" in c for c in candidates):
            msg = "cannot tokenise a noncharacter"
            raise ValueError(msg)
        return LexicalScorer().score(candidates, references)


def test_score_batch_isolates_a_pair_whose_scorer_raises_any_data_error() -> None:
    scorer = BrokenTokenizer()
    got = score_batch(scorer, ["Paris is the capital of France.", "odd \ufffe text"], [REF, REF])
    assert scorer.calls == [2, 1, 1]
    assert got.scores[0] == pytest.approx(1.0) and math.isnan(got.scores[1])
    assert "ValueError: cannot tokenise" in got.errors[1]


def test_score_batch_lets_connection_errors_fail_the_job() -> None:
    class Down:
        identity = {"name": "down"}

        def score(self, candidates: Sequence[str], references: Sequence[str]) -> list[float]:
            raise ConnectionRefusedError

    with pytest.raises(ConnectionRefusedError):
        score_batch(Down(), ["x"], [REF])  # type: ignore[arg-type]


def test_route_turns_an_error_while_routing_into_a_failed_question(monkeypatch: pytest.MonkeyPatch) -> None:
    from qaflow.core.score_step import Scored
    from qaflow.flinkjob import records

    real_step = records.score_step

    def broken_decide(state: object, answer: object, result: object, policy: object) -> object:
        if not isinstance(result, Scored):  # the failed path runs as it is
            return real_step(state, answer, result, policy)  # type: ignore[arg-type]
        msg = "1 validation error for BestAttempt"
        raise ValueError(msg)

    monkeypatch.setattr(records, "score_step", broken_decide)
    a = answer("Capital of France?", REF, "Paris.")
    step = _route(None, a, 0.9)
    assert step.outcome is Outcome.FAILED and step.state is not None and step.state.terminal
    dl = decode(DeadLetter, step.outputs[0].value)
    assert dl.question and dl.question.question_id == a.question_id
    assert "permanent error while routing" in dl.reason and "BestAttempt" in dl.reason

    def down(*args: object, **kwargs: object) -> None:
        raise ConnectionResetError

    monkeypatch.setattr(records, "score_step", down)
    with pytest.raises(ConnectionResetError):  # transient: the job restarts from its checkpoint
        _route(None, a, 0.9)


# -- the operators: thin shells over score_step, one decode per record ----------------------------


class _FakeState:
    def __init__(self) -> None:
        self.stored: str | None = None

    def value(self) -> str | None:
        return self.stored

    def update(self, value: str) -> None:
        self.stored = value

    def clear(self) -> None:
        self.stored = None


class _FakeMetrics:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add_group(self, *names: str) -> _FakeMetrics:
        return self

    def counter(self, name: str) -> Any:
        counts = self.counts

        class Counter:
            def inc(self, n: int = 1) -> None:
                counts[name] = counts.get(name, 0) + n

        return Counter()


class _FakeRuntime:
    def __init__(self) -> None:
        self.states: dict[str, _FakeState] = {}
        self.metrics = _FakeMetrics()

    def get_state(self, desc: Any) -> _FakeState:
        return self.states.setdefault(desc.get_name(), _FakeState())

    def get_metrics_group(self) -> _FakeMetrics:
        return self.metrics


def test_the_job_decodes_each_record_once_and_stores_what_score_step_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """DecodeAnswers -> (the scoring table) -> RouteAnswers on fakes of Flink's runtime: one
    ``decode`` per record, and the keyed state written is the state ``score_step`` returned."""
    from pyflink.common import Row

    from qaflow.core import score_step as core_step
    from qaflow.flinkjob import operators, records

    decodes: list[str] = []
    real_decode = records.decode

    def counting_decode(schema: Any, raw: Any) -> Any:
        decodes.append(schema.__name__)
        return real_decode(schema, raw)

    steps: list[Any] = []

    def spy(*args: Any) -> Any:
        steps.append(core_step.score_step(*args))
        return steps[-1]

    monkeypatch.setattr(records, "decode", counting_decode)
    monkeypatch.setattr(records, "score_step", spy)
    topics = TopicMap.build("t.")
    decode_op = operators.DecodeAnswers(topics)
    route_op = operators.RouteAnswers(POLICY, topics, open_ttl_s=0, terminal_ttl_s=0)
    runtime = _FakeRuntime()
    decode_op.open(runtime)
    route_op.open(runtime)

    def through_job(a: Any, score: float) -> list[Row]:
        [row] = list(decode_op.process_element(a.encode().decode(), None))  # type: ignore[arg-type]
        got = score_batch(LexicalScorer(), [row[2]], [row[3]])  # what the scoring UDF computes
        scored = Row(score, got.identity, got.errors[0])
        return list(route_op.process_element(Row(row[0], row[1], row[4], scored), None))  # type: ignore[arg-type]

    first = answer("Capital of France?", REF, "Lyon.")
    rows = through_job(first, 0.3)
    assert decodes == ["AnswerMessage"]
    assert [r[2] for r in rows] == ["t.qa.scores", "t.qa.questions"]
    assert decode_state(runtime.states["open"].stored) == steps[-1].state and runtime.states["done"].stored is None
    history = decode(ScoreRecord, rows[0][1])
    assert history.scorer == LexicalScorer().identity and history.score == 0.3

    again = decode(QuestionMessage, rows[1][1])
    second = answer("Capital of France?", REF, "Paris.", generation=again.generation, best=again.best)
    rows = through_job(second, 0.9)
    assert decodes == ["AnswerMessage", "AnswerMessage"]
    assert [r[2] for r in rows] == ["t.qa.scores", "t.qa.results"]
    assert decode_state(runtime.states["done"].stored) == steps[-1].state == QuestionState(2, None, True)
    assert runtime.states["open"].stored is None
    assert through_job(second, 0.9) == [] and runtime.metrics.counts["duplicates"] == 1
