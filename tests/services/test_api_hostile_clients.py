"""The api under real gunicorn against slow, idle and malformed clients (issue 10, points 2 and 3).

Started exactly as its container starts it (the config's worker class and defaults). While
40 connections hold a partial request line, 40 trickle headers and one sends raw binary,
``/healthz`` must keep answering another client quickly, and the binary one must get a 400
(or be closed) within seconds. Errors that gunicorn itself writes (400, 414, 431, bad chunked
framing) must be problem documents, never HTML.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.services.test_api_gunicorn import Gunicorn

SLOW = 40
HEALTH_CHECKS = 20
HEALTH_BUDGET_S = 2.0  # each /healthz from the well-behaved client; 2 shared cores, so not tighter
BINARY_BUDGET_S = 12.0  # the issue saw 30 s


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Gunicorn]:
    env = {"QAFLOW_BUS_URL": "memory://", "QAFLOW_STORE_URL": f"sqlite:///{tmp_path / 'qa.db'}",
           "QAFLOW_CACHE_URL": "memory://"}
    g = Gunicorn("api", env, tmp_path)
    g.start()
    yield g
    g.kill()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.settimeout(None)
    return sock


def _read_reply(sock: socket.socket, budget_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes (or the budget ends), and how long that took."""
    started = time.monotonic()
    sock.settimeout(budget_s)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data and _complete(data):
                break
    except (TimeoutError, ConnectionResetError):
        pass
    return data, time.monotonic() - started


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def _problem(data: bytes, status: int) -> dict[str, Any]:
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}".encode()), head[:200]
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(b":") for line in head.split(b"\r\n")[1:])}
    assert headers.get(b"content-type") == b"application/problem+json", head
    doc: dict[str, Any] = json.loads(body)
    assert doc["status"] == status and doc["type"] == "about:blank" and doc["detail"]
    return doc


def test_slow_and_malformed_clients_do_not_starve_the_api(api: Gunicorn) -> None:
    stop = threading.Event()
    socks: list[socket.socket] = []
    try:
        for _ in range(SLOW):  # a partial request line, then nothing
            sock = _connect(api.port)
            sock.sendall(b"GET /v1/st")
            socks.append(sock)
        tricklers = [_connect(api.port) for _ in range(SLOW)]
        socks += tricklers
        for sock in tricklers:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")

        def trickle() -> None:  # one header byte per connection every 0.5 s, never the blank line
            while not stop.wait(0.5):
                for sock in tricklers:
                    with contextlib.suppress(OSError):
                        sock.sendall(b"X")

        threading.Thread(target=trickle, daemon=True).start()
        binary = _connect(api.port)
        socks.append(binary)
        binary.sendall(bytes(b for b in range(256) if b not in (10, 13)) * 4)  # ~1 KB, no line end
        time.sleep(1.0)  # let the server take them all in

        latencies = []
        for _ in range(HEALTH_CHECKS):
            started = time.monotonic()
            reply = requests.get(api.url + "/healthz", timeout=10)
            latencies.append(time.monotonic() - started)
            assert reply.status_code == 200
        print(f"under {2 * SLOW + 1} hostile connections: /healthz max {max(latencies):.3f}s, "
              f"median {sorted(latencies)[len(latencies) // 2]:.3f}s")
        assert max(latencies) < HEALTH_BUDGET_S, latencies

        data, waited = _read_reply(binary, BINARY_BUDGET_S + 5)
        print(f"binary client: {'closed' if not data else data.split(b' ', 2)[1].decode()} after {waited:.1f}s")
        assert waited < BINARY_BUDGET_S, f"binary client held for {waited:.1f}s"
        if data:
            _problem(data, 400)
    finally:
        stop.set()
        for sock in socks:
            sock.close()
    assert api.proc is not None and api.proc.poll() is None


def test_idle_and_partial_connections_are_closed(api: Gunicorn) -> None:
    idle = _connect(api.port)
    partial = _connect(api.port)
    partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    try:
        for sock in (idle, partial):
            data, waited = _read_reply(sock, BINARY_BUDGET_S + 5)
            assert waited < BINARY_BUDGET_S, f"connection held for {waited:.1f}s"
            assert not data or data.startswith(b"HTTP/1.1 4"), data[:100]
    finally:
        idle.close()
        partial.close()


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n",
         431),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 20_000 + b"\r\n\r\n", 431),
        (b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 400),
        (b"G\x01T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n", 400),
    ],
    ids=["uri-too-long", "too-many-headers", "header-too-large", "bad-version", "bad-method", "bad-header"],
)
def test_gunicorn_errors_are_problem_documents(api: Gunicorn, raw: bytes, status: int) -> None:
    with _connect(api.port) as sock:
        sock.sendall(raw)
        data, _ = _read_reply(sock, 10)
    _problem(data, status)


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\n{}\r\n0\r\n\r\n",  # not hexadecimal
        b"-5\r\n{}\r\n0\r\n\r\n",  # negative
        b"2\r\n{}XX\r\n0\r\n\r\n",  # chunk longer than announced
    ],
    ids=["not-hex", "negative", "overlong-chunk"],
)
def test_bad_chunked_framing_is_400(api: Gunicorn, body: bytes) -> None:
    head = (b"POST /v1/questions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    with _connect(api.port) as sock:
        sock.sendall(head + body)
        data, _ = _read_reply(sock, 10)
    _problem(data, 400)


def test_a_body_that_stops_arriving_is_408(api: Gunicorn) -> None:
    head = (b"POST /v1/questions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\nConnection: close\r\n\r\n")
    with _connect(api.port) as sock:
        sock.sendall(head + b'{"title": ')
        data, waited = _read_reply(sock, 30)
    print(f"stalled body answered after {waited:.1f}s")
    assert waited < 20, waited
    _problem(data, 408)


def test_an_absurd_chunk_size_is_a_body_that_never_arrives(api: Gunicorn) -> None:
    """A well-formed but absurd size (2**84 bytes) cannot be told from a slow body: 408 once the
    worker's read timeout passes, never a 500 and never a connection held open."""
    head = (b"POST /v1/questions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    with _connect(api.port) as sock:
        sock.sendall(head + b"fffffffffffffffffffff\r\n{}\r\n0\r\n\r\n")
        data, waited = _read_reply(sock, 30)
    assert waited < 20, waited
    _problem(data, 408)
