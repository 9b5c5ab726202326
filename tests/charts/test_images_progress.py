"""scripts/images/build.sh reports progress (issue 14, item 8): one line per image, n/N and the
elapsed time, on stderr. Run with a stand-in ``podman`` that only records its arguments."""

from __future__ import annotations

import hashlib
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


@pytest.mark.parametrize("script", ["all.sh", "build.sh", "wheelhouse.sh", "lib.sh"])
def test_image_scripts_shellcheck_clean(script: str) -> None:
    exe = shutil.which("shellcheck")
    if exe is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    proc = subprocess.run([exe, "-x", "--severity=style", str(REPO / "scripts" / "images" / script)],
                          capture_output=True, text=True, check=False)  # -x: follow the sourced lib.sh
    assert proc.returncode == 0, proc.stdout


def test_the_wheelhouse_key_covers_the_shared_lib(tmp_path: Path) -> None:
    """wheelhouse.sh and build.sh share lib.sh (paths, torch index); its torch index decides which
    torch wheels the wheelhouse holds, so lib.sh is part of the key: a stamp of pyproject.toml,
    wheelhouse.sh and lib.sh is up to date (nothing built), and one without lib.sh is not."""
    images = REPO / "scripts" / "images"
    parts = [REPO / "pyproject.toml", images / "wheelhouse.sh", images / "lib.sh"]
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    env = {**os.environ, "QAFLOW_WHEELHOUSE": str(wheelhouse), "PYTHON": "false"}  # building would fail at once

    def run_with_stamp(files: list[Path]) -> subprocess.CompletedProcess[str]:
        key = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]
        (wheelhouse / ".qaflow-stamp").write_text(key + "\n")
        return subprocess.run(["bash", str(images / "wheelhouse.sh")], env=env, capture_output=True, text=True,
                              timeout=60, check=False)

    current = run_with_stamp(parts)
    assert current.returncode == 0 and "wheelhouse up to date" in current.stdout, current.stderr
    stale = run_with_stamp(parts[:2])
    assert stale.returncode != 0 and "up to date" not in stale.stdout
