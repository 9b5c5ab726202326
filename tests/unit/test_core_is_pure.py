"""The core imports no transport: Kafka, Flask, PyFlink, psycopg2, redis, HTTP, torch."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "src" / "qaflow" / "core"
FORBIDDEN = {"kafka", "flask", "werkzeug", "gunicorn", "pyflink", "psycopg2", "redis", "requests", "urllib3",
             "socket", "http", "sqlite3", "torch", "bert_score", "transformers", "kubernetes", "subprocess"}


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_modules_import_no_io_library() -> None:
    modules = sorted(CORE.glob("*.py"))
    assert len(modules) >= 8
    offenders = {p.name: sorted(imported(p) & FORBIDDEN) for p in modules if imported(p) & FORBIDDEN}
    assert not offenders, offenders


def test_core_imports_only_the_core_within_qaflow() -> None:
    for p in CORE.glob("*.py"):
        tree = ast.parse(p.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qaflow."):
                assert node.module.startswith("qaflow.core"), (p.name, node.module)
