"""`make install`'s torch fallback: where download.pytorch.org is unreachable, uv's raw "Failed to fetch"
lines are kept aside (one line says why) and shown only when PyPI's install fails too, or with
TORCH_VERBOSE=1; the recipe's exit code stays the last install's.

The recipe runs with a stand-in for ``uv pip install`` (``UV_PIP_INSTALL=...`` on make's command
line): it fails the ``--torch-backend`` attempt as uv does without the index, and exits with
``FAKE_PYPI`` otherwise.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FETCH_ERROR = "error: Failed to fetch: https://download.pytorch.org/whl/cpu/torch/"
FAKE_UV = f"""#!/usr/bin/env bash
for a in "$@"; do
  if [[ $a == --torch-backend=* ]]; then
    if [[ $FAKE_TORCH == ok ]]; then echo "fake: installed from the torch index"; exit 0; fi
    echo "{FETCH_ERROR}" >&2
    echo "  cause: failed to lookup address information: Name or service not known" >&2
    exit 2
  fi
done
echo "fake: installed from PyPI"
exit "$FAKE_PYPI"
"""

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make_install(
    tmp_path: Path, *, torch: str = "fail", pypi: int = 0, **make_vars: str
) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "fake-uv"
    fake.write_text(FAKE_UV)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    venv = tmp_path / "venv"
    venv.mkdir(exist_ok=True)
    (venv / ".created").touch()
    (venv / ".run").unlink(missing_ok=True)
    args = [f"{k}={v}" for k, v in make_vars.items()]
    return subprocess.run(["make", "-s", f"{venv}/.run", f"VENV={venv}", f"UV_PIP_INSTALL={fake}", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "FAKE_TORCH": torch, "FAKE_PYPI": str(pypi), "TMPDIR": str(tmp_path)})


def test_an_unreachable_torch_index_says_one_line_and_installs_from_pypi(tmp_path: Path) -> None:
    proc = make_install(tmp_path)
    assert proc.returncode == 0, proc.stderr
    said = proc.stdout + proc.stderr
    assert "cause:" not in said and FETCH_ERROR not in said  # uv's raw lines stay aside
    assert said.splitlines() == [
        "torch: --torch-backend=auto failed (Failed to fetch: https://download.pytorch.org/whl/cpu/torch/); "
        "using PyPI's torch build",
        "fake: installed from PyPI",
    ]
    assert (tmp_path / "venv" / ".run").exists()
    assert not list(tmp_path.glob("tmp.*"))  # the kept-aside output is removed


def test_when_pypi_fails_too_the_first_attempts_output_is_shown_and_the_recipe_fails(tmp_path: Path) -> None:
    proc = make_install(tmp_path, pypi=3)
    assert proc.returncode != 0
    assert "Error 3" in proc.stderr  # the recipe's exit code is the PyPI install's
    assert FETCH_ERROR in proc.stderr and "cause: failed to lookup address information" in proc.stderr
    assert not (tmp_path / "venv" / ".run").exists()
    assert not list(tmp_path.glob("tmp.*"))


def test_torch_verbose_shows_the_failed_attempt(tmp_path: Path) -> None:
    proc = make_install(tmp_path, TORCH_VERBOSE="1")
    assert proc.returncode == 0, proc.stderr
    assert FETCH_ERROR in proc.stdout


def test_a_reachable_index_and_an_empty_backend_are_unchanged(tmp_path: Path) -> None:
    ok = make_install(tmp_path, torch="ok")
    assert ok.returncode == 0 and ok.stdout.splitlines() == [
        "fake: installed from the torch index", "torch: installed with uv --torch-backend=auto"]
    pypi_only = make_install(tmp_path, pypi=4, TORCH_BACKEND="")
    assert pypi_only.returncode != 0 and "Error 4" in pypi_only.stderr and "torch:" not in pypi_only.stdout
