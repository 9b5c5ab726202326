"""Process trees and their CPU time, read from Linux's /proc (``man 5 proc``: /proc/<pid>/stat
fields 14-17 are utime, stime, cutime, cstime in clock ticks)."""

from __future__ import annotations

import os
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree(root: int) -> list[int]:
    """``root`` and its live descendants (one scan of /proc's parent ids)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (index 11 is utime); None once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
