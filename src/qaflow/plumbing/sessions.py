"""One ``requests.Session`` per calling thread, all closed together.

``requests`` does not document ``Session`` as thread-safe, so each thread that calls gets a
session of its own (with its own connection pool) and N calls in flight never share one.
Used by the LLM clients (:mod:`qaflow.llm.http`) and traffic-gen's api client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import requests
from requests.adapters import HTTPAdapter


class SessionPool:
    """Thread-local sessions.

    ``headers`` are set on every session; ``adapter``, when given, builds the transport
    adapter mounted for ``http://`` and ``https://`` on each new session (pool sizes,
    retries). After :meth:`close` a thread that calls again gets a fresh session.
    """

    def __init__(self, *, headers: Mapping[str, str] | None = None,
                 adapter: Callable[[], HTTPAdapter] | None = None) -> None:
        self._headers = dict(headers or {})
        self._adapter = adapter
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def session(self) -> requests.Session:
        """The calling thread's session, created on its first call."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update(self._headers)
            if self._adapter is not None:
                adapter = self._adapter()
                session.mount("http://", adapter)
                session.mount("https://", adapter)
            with self._lock:
                self._sessions.append(session)
            self._local.session = session
        return session

    def close(self) -> None:
        """Close every session handed out so far, from any thread."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
            self._local = threading.local()
        for session in sessions:
            session.close()
