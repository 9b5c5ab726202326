"""Moved to :mod:`qaflow.core.retry`; this name stays for the tests that import it."""

from qaflow.core.retry import is_due, release

__all__ = ["is_due", "release"]
