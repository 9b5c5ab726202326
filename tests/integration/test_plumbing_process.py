"""The shared child-process handle (qaflow.plumbing.process) on real processes: the log file, a
stop that escalates to SIGKILL, and a group stop that takes the grandchildren with it."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from qaflow.plumbing.process import ChildProcess

pytestmark = pytest.mark.integration

# Prints its pid (and its child's), then ignores SIGTERM when asked to, and sleeps.
SCRIPT = """
import os, signal, subprocess, sys, time
if "stubborn" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) if "fork" in sys.argv else None
print("ready", os.getpid(), child.pid if child else 0, flush=True)
time.sleep(60)
"""


def _wait_ready(log: Path) -> list[int]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        if text.startswith("ready"):
            return [int(x) for x in text.split()[1:3]]
        time.sleep(0.05)
    raise AssertionError(f"child never ready: {log.read_text()!r}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_output_goes_to_the_log_and_append_keeps_earlier_runs(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    for _ in range(2):
        child = ChildProcess.spawn("echo", [sys.executable, "-c", "print('hello')"], log=log, append=True)
        assert child.wait(20) == 0
    assert log.read_text() == "hello\nhello\n"
    child = ChildProcess.spawn("echo", [sys.executable, "-c", "print('again')"], log=log)
    assert child.wait(20) == 0
    assert log.read_text() == "again\n"


def test_stop_escalates_to_sigkill_after_the_grace(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    child = ChildProcess.spawn("stubborn", [sys.executable, "-c", SCRIPT, "stubborn"], log=log)
    _wait_ready(log)
    assert child.running
    started = time.monotonic()
    code = child.stop(grace=0.5)
    assert code == -signal.SIGKILL
    assert 0.4 < time.monotonic() - started < 10
    assert not child.running


def test_stop_sends_the_given_signal_first(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    child = ChildProcess.spawn("polite", [sys.executable, "-c", SCRIPT], log=log)
    _wait_ready(log)
    assert child.stop(grace=10, sig=signal.SIGINT) == -signal.SIGINT  # not escalated to SIGKILL


def test_group_stop_takes_the_grandchildren_along(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    child = ChildProcess.spawn("parent", [sys.executable, "-c", SCRIPT, "fork"], log=log, group=True)
    pid, grandchild = _wait_ready(log)
    assert os.getpgid(pid) == pid  # its own group
    assert _alive(grandchild)
    child.stop(grace=10)
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_without_group_the_grandchild_is_left_alone(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    child = ChildProcess.spawn("parent", [sys.executable, "-c", SCRIPT, "fork"], log=log, start_new_session=True)
    _, grandchild = _wait_ready(log)
    try:
        child.stop(grace=10)
        time.sleep(0.3)
        assert _alive(grandchild)
    finally:
        os.kill(grandchild, signal.SIGKILL)
