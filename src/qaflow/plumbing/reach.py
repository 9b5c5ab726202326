"""Is a server there at all? One HTTP request, so a stopped backend is named in one line
before a run instead of after every question has failed (``qaflow run``'s pre-flight check).

Any HTTP answer counts as reachable (a 401 or 404 still means a server listens); so does a
connection that opens but answers slowly. What does not: a refused connection, a host name
that does not resolve, no connection within the timeout, a failed TLS handshake. The request
goes through ``requests`` as the LLM clients' do, so proxies (HTTPS_PROXY, NO_PROXY) apply alike.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
from collections.abc import Iterator

import requests

from qaflow.core.errors import UnreachableError


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (causes, contexts, urllib3's ``reason``), once each."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        wrapped = [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
        todo.extend(w for w in wrapped if isinstance(w, BaseException))


def why(exc: requests.RequestException, timeout_s: float) -> str:
    """A few words for why ``exc`` reached no server: "connection refused", "unknown host", ..."""
    if isinstance(exc, requests.ConnectTimeout):
        return f"no connection within {timeout_s:g} s"
    for e in _chain(exc):
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, socket.gaierror):
            return "unknown host"
        if isinstance(e, ssl.SSLError):
            return f"TLS handshake failed ({e.reason or e})"
        if isinstance(e, TimeoutError | socket.timeout):
            return f"no connection within {timeout_s:g} s"
        if isinstance(e, OSError) and e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNRESET):
            return os.strerror(e.errno).lower()
    return type(exc).__name__


def check_reachable(what: str, url: str, *, timeout_s: float, hint: str = "") -> None:
    """Return if a server answers at ``url``; else :class:`UnreachableError`:
    ``cannot reach <what> at <url>: <why>; <hint>``. Waits ``timeout_s`` at most to connect."""
    try:
        requests.head(url, timeout=(timeout_s, timeout_s), allow_redirects=False).close()
    except requests.ReadTimeout:
        return  # connected: a server is there, only slow to answer
    except requests.RequestException as exc:
        msg = f"cannot reach {what} at {url}: {why(exc, timeout_s)}" + (f"; {hint}" if hint else "")
        raise UnreachableError(msg) from exc
