"""The scorer's imports load from bytecode (issue 13, time to first score).

Where Python may not write ``.pyc`` files (``PYTHONDONTWRITEBYTECODE=1``, as on the machine
of issue 13 and in containers), torch and transformers were compiled from source on every
run: 2-3x the scorer's start-up. ``make install`` now writes the bytecode at install, and the
import names the packages that still lack it.
"""

from __future__ import annotations

import importlib
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qaflow.scoring.lightimport import uncached_bytecode

ROOT = Path(__file__).resolve().parents[2]


def _import_fresh(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    importlib.invalidate_caches()
    importlib.import_module(name)


def test_a_module_imported_without_writing_bytecode_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "nocache_pkg").mkdir()
    (tmp_path / "nocache_pkg" / "__init__.py").write_text("X = 1\n")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(sys, "pycache_prefix", None)
    _import_fresh(tmp_path, "nocache_pkg", monkeypatch)
    assert uncached_bytecode(("nocache_pkg", "not_imported_at_all", "sys")) == ["nocache_pkg"]


def test_a_module_with_its_bytecode_written_is_not_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cached_pkg").mkdir()
    source = tmp_path / "cached_pkg" / "__init__.py"
    source.write_text("X = 1\n")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(sys, "pycache_prefix", None)
    py_compile.compile(str(source), doraise=True)  # what uv's --compile-bytecode does at install
    _import_fresh(tmp_path, "cached_pkg", monkeypatch)
    assert uncached_bytecode(("cached_pkg",)) == []


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_install_compiles_bytecode_in_both_torch_branches(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    plan = subprocess.run(["make", "-n", "-B", f"{venv}/.run", f"VENV={venv}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True).stdout
    installs = plan.split(" uv pip install")[1:]
    assert len(installs) == 2, plan  # --torch-backend=auto, then PyPI's build where that index is unreachable
    assert all("--compile-bytecode" in part.split(";")[0] for part in installs), plan
