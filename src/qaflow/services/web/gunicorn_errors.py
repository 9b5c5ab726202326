"""Errors that gunicorn answers itself, before the app sees a request, as problem documents.

gunicorn answers a request it cannot parse (bad request line, method or version, malformed
or too many headers: 400, 414, 431, 501) with a small HTML page written by
``gunicorn.util.write_error(sock, status, reason, message)``; its workers call that one
function for every such reply. :func:`install` replaces it, in each worker after the fork,
with one that writes the same status as ``application/problem+json``, so docs/api.md's
"errors are never HTML" holds for every byte the server sends.
"""

from __future__ import annotations

import json
from typing import Any

PROBLEM_JSON = "application/problem+json"
MAX_DETAIL = 200  # characters of gunicorn's message kept (it may echo the client's bytes)


def problem_bytes(status: int, reason: str, message: str) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 response with a problem document body."""
    detail = (message or reason)[:MAX_DETAIL]
    body = json.dumps({"type": "about:blank", "title": reason, "status": status, "detail": detail}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: {PROBLEM_JSON}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def write_problem(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    from gunicorn import util

    util.write_nonblock(sock, problem_bytes(status_int, reason, mesg))


def install() -> None:
    """Make gunicorn's own error replies problem documents (idempotent; call after the fork)."""
    from gunicorn import util

    util.write_error = write_problem
