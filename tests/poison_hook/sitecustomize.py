"""Test-only fault injection for service and ``qaflow run`` processes.

Python's ``site`` module imports this file at start-up when this folder is on ``PYTHONPATH``.
With ``POISON_MARK`` set, :meth:`AnswerStage.handle` raises ``RuntimeError`` for every question
whose title contains the mark: a handler bug that hits one record and not its neighbours, the
case per-record fault isolation exists for. Nothing here is imported outside such tests.
"""

from __future__ import annotations

import os

MARK = os.environ.get("POISON_MARK", "")

if MARK:
    from qaflow.pipeline import answer

    _handle = answer.AnswerStage.handle

    def _poisoned(self, q, origin):  # type: ignore[no-untyped-def]
        if MARK in q.title:
            msg = f"injected handler fault for {q.title!r}"
            raise RuntimeError(msg)
        return _handle(self, q, origin)

    answer.AnswerStage.handle = _poisoned  # type: ignore[method-assign]
