"""Moved to :mod:`qaflow.core.outputs`; this name stays for the tests that import it."""

from qaflow.core.outputs import Output, dead_letter

__all__ = ["Output", "dead_letter"]
