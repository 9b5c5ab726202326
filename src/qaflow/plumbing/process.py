"""A child process we started: spawn it with its output in a log file, ask whether it runs, stop it.

Used by the local servers (:mod:`qaflow.devstack.process`) and the local Flink job
(:mod:`qaflow.flinkjob.runner`). Stopping sends a signal, waits ``grace`` seconds, then
SIGKILLs. A ``group`` child leads a process group of its own and every signal goes to the
whole group, so what it started (a JVM, Python workers) stops with it; the group also gets a
final SIGKILL after the leader exits, for members that outlived it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class ChildProcess:
    """One started process (``proc``); ``name`` is for log lines."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], *, group: bool = False) -> None:
        self.name = name
        self.proc = proc
        self.group = group

    @classmethod
    def spawn(
        cls, name: str, cmd: Sequence[str], *, log: Path | None, append: bool = False, group: bool = False,
        **popen: Any,
    ) -> ChildProcess:
        """Start ``cmd`` with no stdin; stdout and stderr into ``log`` (truncated, or appended to
        with ``append``), or inherited when ``log`` is None. ``group`` starts a new session whose
        group the signals go to; ``popen`` are further ``subprocess.Popen`` arguments."""
        if group:
            popen["start_new_session"] = True
        if log is None:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, **popen)
        else:
            with log.open("ab" if append else "wb") as out:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, **popen)
        return cls(name, proc, group=group)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def poll(self) -> int | None:
        return self.proc.poll()

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        """The exit code; raises ``subprocess.TimeoutExpired`` after ``timeout`` seconds."""
        return self.proc.wait(timeout)

    def send(self, sig: int) -> None:
        """``sig`` to the process, or to its whole group; nothing if they are gone."""
        if not self.group:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)  # the group spawn() created

    def kill(self, timeout: float | None = None) -> None:
        """SIGKILL (the group too): a crash, with no chance to finish anything. Waits for the exit."""
        self.send(signal.SIGKILL)
        self.proc.wait(timeout)

    def stop(self, grace: float, sig: int = signal.SIGTERM) -> int:
        """Send ``sig``; SIGKILL what has not exited after ``grace`` seconds. Returns the exit code."""
        if self.proc.poll() is None:
            self.send(sig)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop in %.0f s; killing pid %d", self.name, grace, self.proc.pid)
                self.send(signal.SIGKILL)
                self.proc.wait()
        if self.group:
            self.send(signal.SIGKILL)  # members that outlived the leader
        return self.proc.wait()
