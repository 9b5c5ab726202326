"""An unprivileged user for servers that refuse to run as root (PostgreSQL)."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from pathlib import Path

CANDIDATES = ("postgres", "qaflow")  # Debian's postgresql package creates the first


def run_user() -> str | None:
    """None when not root; else an existing candidate user, creating ``qaflow`` if needed."""
    if os.geteuid() != 0:
        return None
    for name in CANDIDATES:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "qaflow"],
        check=True,
        capture_output=True,
    )
    return "qaflow"


def traversable_by(path: Path, user: str) -> bool:
    """True when ``user`` may enter every directory from / down to ``path``."""
    entry = pwd.getpwnam(user)
    groups = set(os.getgrouplist(user, entry.pw_gid))
    for directory in (path, *path.parents):
        st = directory.stat()
        if st.st_uid == entry.pw_uid:
            allowed = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            allowed = st.st_mode & stat.S_IXGRP
        else:
            allowed = st.st_mode & stat.S_IXOTH
        if not allowed:
            return False
    return True


def chown_tree(path: Path, user: str) -> None:
    """Give ``path`` and everything under it to ``user`` (and its primary group)."""
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)
