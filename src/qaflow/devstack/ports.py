"""Free loopback ports for local servers."""

from __future__ import annotations

import socket
from contextlib import ExitStack

LOOPBACK = "127.0.0.1"


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct ports that nothing listens on right now.

    The sockets are held open together so the kernel cannot hand out the same port twice.
    Another process may still take a port before our server binds it; servers started with
    picked ports retry on a bind conflict.
    """
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET)) for _ in range(count)]
        for sock in socks:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in socks]


def free_port(host: str = LOOPBACK) -> int:
    """One port that nothing listens on right now."""
    return free_ports(1, host)[0]


def is_listening(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True when a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
