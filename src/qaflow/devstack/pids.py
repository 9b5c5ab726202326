"""Process ids of servers we started, checked before any signal is sent."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from pathlib import Path

from qaflow.devstack.errors import DevStackError

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent() -> None:
    """Run in the child before exec: SIGTERM it when the parent dies without cleaning up."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def start_time(pid: int) -> int | None:
    """Kernel start time of ``pid`` (clock ticks since boot); None if unknown."""
    fields = _stat(pid)
    return None if fields is None else int(fields[19])


def alive(pid: int, started: int | None = None) -> bool:
    """True when ``pid`` runs and, if ``started`` is given, is still the same process."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # reaps it if it is our exited child
        if done:
            return False
    except ChildProcessError:
        pass
    fields = _stat(pid)
    if fields is None:
        if sys.platform.startswith("linux"):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    if fields[0] in ("Z", "X"):  # exited; an orphan zombie may wait long for its reaper
        return False
    return started is None or int(fields[19]) == started


def stop_pid(pid: int, started: int | None, *, sig: int = signal.SIGTERM, grace: float = 20.0) -> bool:
    """Stop a server started earlier, maybe by another process. False if it had gone.

    ``started`` guards against a recycled pid: nothing is signalled unless it matches.
    """
    if not alive(pid, started):
        return False
    for signum, wait in ((sig, grace), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while alive(pid, started):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        else:
            return True
    msg = f"pid {pid} is still running after SIGKILL"
    raise DevStackError(msg)
