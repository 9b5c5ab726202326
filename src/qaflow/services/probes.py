"""/healthz, /readyz and /metrics for worker processes that have no web app of their own.

Liveness means the main loop made progress recently (a stuck loop gets restarted);
readiness means the worker started and every dependency it reports through
:meth:`Probes.set_dependency` (the bus, the store) is reachable now.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingServer(WSGIServer):
    daemon_threads = True


class Probes:
    def __init__(self, port: int, host: str = "127.0.0.1", stall_after_s: float = 120.0) -> None:
        self.port = port
        self.host = host
        self.stall_after_s = stall_after_s
        self.ready = False
        self.details: dict[str, Any] = {}
        self.down: set[str] = set()  # dependencies unreachable now (see set_dependency)
        self.checks: dict[str, Callable[[], bool]] = {}  # asked on every /readyz (see add_check)
        self._beat = time.monotonic()
        self._server: WSGIServer | None = None

    def beat(self) -> None:
        self._beat = time.monotonic()

    def set_dependency(self, name: str, up: bool) -> None:
        """Record whether ``name`` (``"bus"``, ``"store"``) is reachable; ``/readyz`` says
        ``unavailable`` while any is not, and names it (``"bus": "unavailable"``)."""
        if up:
            self.down.discard(name)
        else:
            self.down.add(name)
        self.details[name] = "ok" if up else "unavailable"

    def add_check(self, name: str, check: Callable[[], bool]) -> None:
        """``check()`` is asked on every ``/readyz``, so a loop blocked in a library call
        (kafka-python waiting for a broker) still reports the outage; it must be cheap and
        thread-safe."""
        self.checks[name] = check

    def _checked(self) -> set[str]:
        failing = set()
        for name, check in self.checks.items():
            try:
                ok = bool(check())
            except Exception:
                ok = False
            if not ok:
                failing.add(name)
        return failing

    @property
    def is_ready(self) -> bool:
        return self.ready and not self.down and self.alive and not self._checked()

    @property
    def alive(self) -> bool:
        return time.monotonic() - self._beat < self.stall_after_s

    def app(self, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            start("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [generate_latest()]
        if path in ("/healthz", "/readyz"):
            ok = self.alive if path == "/healthz" else self.is_ready
            details = dict(self.details)
            if path == "/readyz":
                details.update({name: "unavailable" for name in self._checked() | self.down})
            body = json.dumps({"status": "ok" if ok else "unavailable", **details}).encode()
            start("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [body]
        start("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"error": "not found"}']

    def start(self) -> None:
        self._server = make_server(self.host, self.port, self.app, _ThreadingServer, _QuietHandler)
        self.port = self._server.server_port
        threading.Thread(target=self._server.serve_forever, name="probes", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
