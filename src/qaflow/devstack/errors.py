"""Errors of the local server harness."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from qaflow.core.errors import MissingExtraError, QaflowError

INSTALL_HINT = "bash k8s-dev/local/install-deps.sh"


class DevStackError(QaflowError):
    """A local server could not be found, started or stopped."""


class MissingBinaryError(DevStackError):
    """A program or jar a local server needs is not installed."""

    def __init__(self, what: str, looked_in: str) -> None:
        super().__init__(f"{what} not found ({looked_in}): run  {INSTALL_HINT}")
        self.what = what


class ServerStartError(DevStackError):
    """A server exited or did not answer in time. Carries the tail of its log."""

    def __init__(self, server: str, reason: str, log_path: Path, log_tail: str) -> None:
        super().__init__(f"{server} failed to start: {reason}\n--- last lines of {log_path} ---\n{log_tail}")
        self.server = server
        self.reason = reason
        self.log_path = log_path
        self.log_tail = log_tail

    @classmethod
    def from_log(cls, server: str, reason: str, log_path: Path) -> ServerStartError:
        return cls(server, reason, log_path, log_tail(log_path))

    @property
    def port_conflict(self) -> bool:
        """Another process took the free port we picked; starting again may succeed."""
        text = self.log_tail.lower()
        return "address already in use" in text or "could not bind" in text


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def require_module(module: str, extra: str) -> None:
    """Fail with the pip command when a client library a readiness check uses is missing."""
    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(module, extra)
