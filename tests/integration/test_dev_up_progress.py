"""`qaflow dev up` reports progress the way `qaflow run` does (issue 14, item 8): a rich bar on
stderr, steps done of all, the elapsed time and the last step."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from qaflow.devstack.stack import DevStack, down


def test_dev_up_shows_each_server_prepared_and_ready(tmp_path: Path,
                                                     require_servers: Callable[[DevStack], None]) -> None:
    state_dir = tmp_path / "devstack"
    require_servers(DevStack(state_dir))
    steps: list[str] = []
    stack = DevStack(tmp_path / "attached")
    try:
        stack.start(steps.append)
    finally:
        stack.stop()
    assert sorted(steps) == sorted(f"{n} {w}" for n in ("kafka", "postgres", "redis") for w in ("prepared", "ready"))
    for name in ("kafka", "postgres", "redis"):
        assert steps.index(f"{name} prepared") < steps.index(f"{name} ready")

    qaflow = str(Path(sys.executable).with_name("qaflow"))
    try:
        done = subprocess.run([qaflow, "dev", "up", "--state-dir", str(state_dir)], capture_output=True, text=True,
                              timeout=240, check=False)
        assert done.returncode == 0, done.stderr
    finally:
        down(state_dir)
    assert "qaflow dev up" in done.stderr
    assert "6/6" in done.stderr  # three servers, prepared and ready
    assert "0:00:" in done.stderr  # elapsed time
    assert "qaflow dev stack up" in done.stdout
