"""scripts/images/build.sh reports progress (issue 14, item 8): one line per image, n/N and the
elapsed time, on stderr. Run with a stand-in ``podman`` that only records its arguments."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.charts.render import REPO

pytestmark = pytest.mark.charts


def test_build_sh_prints_each_image_as_n_of_n_with_elapsed_time(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    (bin_dir / "podman").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bin_dir / "curl").write_text("#!/bin/sh\nexit 7\n")  # the torch index: unreachable, at once
    for exe in bin_dir.iterdir():
        exe.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "QAFLOW_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(["bash", str(REPO / "scripts" / "images" / "build.sh"), "api", "scorer"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("-- image ")]
    assert [ln.split(":")[0] for ln in lines] == ["-- image 1/2", "-- image 2/2"]
    assert all("s elapsed" in ln for ln in lines)
    assert "localhost/qaflow/scorer:local" in calls.read_text()


@pytest.mark.parametrize("script", ["all.sh", "build.sh"])
def test_image_scripts_shellcheck_clean(script: str) -> None:
    exe = shutil.which("shellcheck")
    if exe is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    proc = subprocess.run([exe, "--severity=style", str(REPO / "scripts" / "images" / script)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout
