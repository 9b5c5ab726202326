"""Which process holds a listening TCP port, read from ``/proc`` (Linux).

``qaflow dev`` must never take "something answers on port P" for "our service runs": with
two dev stacks on one machine, another stack's api may answer on the port ours failed to
bind. A listening socket is owned by the processes that hold its file descriptor; for
gunicorn that is the master and its workers, so a server owns a port when it or one of its
descendants holds the socket. Sources: proc(5) (``/proc/net/tcp``: hex ``local_address``,
``st`` 0A = TCP_LISTEN, ``inode``; ``/proc/<pid>/fd`` links read ``socket:[inode]``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_LISTEN = "0A"
_PROC = Path("/proc")


def supported() -> bool:
    """True where ``/proc`` tells socket owners (Linux); elsewhere callers fall back to pids."""
    return sys.platform.startswith("linux") and (_PROC / "net" / "tcp").is_file()


def listening_inodes(port: int) -> set[int]:
    """Inodes of the IPv4/IPv6 sockets in LISTEN state on ``port``, on any local address."""
    inodes: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (_PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(int(fields[9]))
    return inodes


def _socket_inodes(pid: int) -> set[int]:
    out: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def descendants(pid: int) -> set[int]:
    """``pid`` and every process below it (children, grandchildren, ...)."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = {pid}, [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def listener_pids(port: int) -> set[int]:
    """Every process holding a listening socket on ``port`` (those we may inspect)."""
    inodes = listening_inodes(port)
    if not inodes:
        return set()
    pids = {int(e.name) for e in _PROC.iterdir() if e.name.isdigit()}
    return {pid for pid in pids if _socket_inodes(pid) & inodes}


def owns_port(pid: int, port: int) -> bool:
    """True when ``pid`` or one of its descendants listens on ``port``.

    Where ``/proc`` cannot tell (not Linux) this is True: the caller's pid check stands alone.
    """
    if not supported():
        return True
    inodes = listening_inodes(port)
    if not inodes:
        return False
    return any(_socket_inodes(p) & inodes for p in descendants(pid))
