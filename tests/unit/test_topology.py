"""The topology (src/qaflow/core/topology.py) is whole, consistent, and the only place of the wiring."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from qaflow.core import topics, topology
from qaflow.devstack.catalog import PIPELINE, SERVICES
from qaflow.services.service import resolve

SRC = Path(__file__).resolve().parents[2] / "src" / "qaflow"


def test_every_topic_is_written_by_one_stage_and_read_by_another() -> None:
    loop = [s for s in topology.STAGES if s is not topology.SCORE]  # the score-worker doubles the score-job
    written = {t for s in loop for t in s.outputs}
    read = {t for s in loop for t in s.inputs}
    assert written == read == set(topics.ALL)


def test_groups_are_unique_and_every_consumer_has_one() -> None:
    groups = [s.group for s in topology.STAGES if s.inputs]
    assert all(groups) and len(groups) == len(set(groups))
    assert not [s.service for s in topology.STAGES if s.group and not s.inputs]


def test_the_score_job_is_the_score_stage() -> None:
    job, worker = topology.SCORE_JOB, topology.SCORE
    assert (job.role, job.inputs, job.outputs) == (worker.role, worker.inputs, worker.outputs)
    assert job.transactional and not worker.transactional


@pytest.mark.parametrize("stage", topology.STAGES, ids=lambda s: s.service)
def test_settings_and_handler_resolve(stage: topology.Stage) -> None:
    assert issubclass(resolve(stage.settings), BaseSettings)
    if stage in topology.WORKERS:
        assert callable(resolve(stage.handler))
        module = f"qaflow.services.{stage.service.replace('-', '_')}.__main__"
        assert importlib.util.find_spec(module) is not None


def test_the_catalog_derives_its_backends_from_the_topology() -> None:
    for name, spec in SERVICES.items():
        assert spec.backends == topology.stage(name).url_backends, name
    assert set(PIPELINE) == {topology.API.service, *(s.service for s in topology.WORKERS)}


def test_each_group_is_written_in_one_source_file_only() -> None:
    """A consumer group as a string literal appears in core/topology.py and nowhere else in src/.

    (The Flink job's *name* is ``qaflow-score`` too, as the score-worker's group: that line is no group.)
    """
    sources = {
        p: "\n".join(line for line in p.read_text(encoding="utf-8").splitlines() if "flink_job_name" not in line)
        for p in SRC.rglob("*.py")
    }
    for stage in topology.STAGES:
        if not stage.group:
            continue
        literal = re.compile(rf"""["']{re.escape(stage.group)}["']""")
        found = sorted(str(p.relative_to(SRC)) for p, text in sources.items() if literal.search(text))
        assert found == ["core/topology.py"], (stage.group, found)


def test_unknown_service_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="llm-worker"):
        topology.stage("llm_worker")
