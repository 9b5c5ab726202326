"""Errors of the local server harness."""

from __future__ import annotations

from pathlib import Path

from qaflow.core.errors import QaflowError

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
        super().__init__(
            f"{server} failed to start: {reason}\n--- last lines of {log_path} ---\n{log_tail}"
        )
        self.server = server
        self.reason = reason
        self.log_path = log_path
        self.log_tail = log_tail

    @property
    def port_conflict(self) -> bool:
        """Another process took the free port we picked; starting again may succeed."""
        text = self.log_tail.lower()
        return "address already in use" in text or "could not bind" in text
