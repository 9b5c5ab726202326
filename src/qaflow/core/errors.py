"""One exception root; behaviour travels as attributes, not as long ``except`` lists."""

from __future__ import annotations

from enum import StrEnum


class ErrorClass(StrEnum):
    """How a failed LLM call is retried. See :mod:`qaflow.core.retry`."""

    QUOTA = "quota"  # 429: honour Retry-After, else a fixed delay
    OVERLOAD = "overload"  # 5xx: exponential backoff with jitter
    TIMEOUT = "timeout"  # no answer in time: same path as overload
    PERMANENT = "permanent"  # 4xx, malformed reply: dead letter at once


class QaflowError(Exception):
    """Root of every error qaflow raises on purpose."""

    retriable: bool = False


class ConfigError(QaflowError):
    """Bad configuration. Raised at start-up, naming the variable."""


class UnreachableError(QaflowError):
    """A backend did not answer at all (refused, unknown host, no answer in time) when checked
    before a run. Retriable: starting it, or waiting, may help; the message says how."""

    retriable = True


class MissingExtraError(QaflowError):
    """An optional dependency is not installed; the message says what to install."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"{module} is not installed: run  pip install 'qaflow[{extra}]'  (in this repository's .venv: "
            f"make deps, which installs every extra the services and tests need)"
        )
        self.module = module
        self.extra = extra


class InvalidMessageError(QaflowError):
    """A record that cannot be decoded or fails its schema. Goes to the dead letter."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason if field is None else f"{field}: {reason}")
        self.reason = reason
        self.field = field


class BusError(QaflowError):
    """A message-bus operation failed; ``retriable`` says whether trying again may help."""

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable


class DeliveryError(BusError):
    """``flush`` found records that were not acknowledged: the caller must not commit."""


class CommitFailedError(BusError):
    """Offsets were not committed (usually a rebalance). The uncommitted records are
    delivered again, so the caller may go on polling; nothing is skipped."""


class DatasetError(QaflowError):
    """A data-set file or row that cannot be read, with its file and line."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        where = path if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class LlmError(QaflowError):
    """A failed LLM call. ``error_class`` picks the retry path."""

    error_class: ErrorClass = ErrorClass.PERMANENT

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s

    @property
    def retriable(self) -> bool:  # type: ignore[override]
        return self.error_class is not ErrorClass.PERMANENT


class QuotaExceededError(LlmError):
    error_class = ErrorClass.QUOTA


class OverloadedError(LlmError):
    error_class = ErrorClass.OVERLOAD


class LlmTimeoutError(LlmError):
    error_class = ErrorClass.TIMEOUT


class PermanentLlmError(LlmError):
    error_class = ErrorClass.PERMANENT


class ScoringError(QaflowError):
    """The scorer could not score a batch (bad input, model failure)."""
