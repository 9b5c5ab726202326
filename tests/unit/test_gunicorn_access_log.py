"""gunicorn builds no access-log line that ``gunicorn.access`` would drop (issue 13: api CPU per request)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from qaflow.core.settings import ApiSettings
from qaflow.services.web.gunicorn_hooks import base_config, skip_disabled_access_log


@pytest.fixture
def access_level() -> Iterator[logging.Logger]:
    """gunicorn.access; the logging that gunicorn's dictConfig changes is put back afterwards."""
    root, access, error = logging.getLogger(), logging.getLogger("gunicorn.access"), logging.getLogger("gunicorn.error")
    saved = [(lg, lg.level, list(lg.handlers), lg.propagate) for lg in (root, access, error)]
    yield access
    for lg, level, handlers, propagate in saved:
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate = propagate


def _logger() -> Logger:
    cfg = Config()
    for name, value in base_config(ApiSettings(), "api").items():
        if name in ("logconfig_dict", "loglevel"):
            cfg.set(name, value)
    return Logger(cfg)


def _atoms_built(log: Logger) -> int:
    with mock.patch.object(Logger, "atoms", autospec=True, return_value={}) as atoms:
        log.access(mock.Mock(), mock.Mock(), {}, mock.Mock())
    return atoms.call_count


def test_a_dropped_access_log_is_not_formatted(access_level: logging.Logger) -> None:
    log = _logger()  # applies the logconfig_dict: gunicorn.access at WARNING
    assert access_level.level == logging.WARNING
    assert _atoms_built(log) == 1  # gunicorn's own behaviour with a logconfig_dict
    skip_disabled_access_log(log)
    assert _atoms_built(log) == 0


def test_an_enabled_access_log_is_kept(access_level: logging.Logger) -> None:
    log: Any = _logger()
    access_level.setLevel(logging.INFO)
    skip_disabled_access_log(log)
    assert _atoms_built(log) == 1
