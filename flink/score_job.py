"""qaflow score job: the one entry point of the MiniCluster (``qaflow flink run``) and the
Flink operator (``PythonDriver -py /opt/flink/usrlib/score_job.py <args>``).

Thin on purpose: the job lives in ``qaflow.flinkjob``. Run with ``--help`` for the options.
"""

from __future__ import annotations

import logging
import os
import sys


def _ensure_qaflow() -> None:
    """In the image qaflow is installed; from a checkout, use ``src/`` (workers inherit PYTHONPATH)."""
    try:
        import qaflow  # noqa: F401
    except ImportError:
        src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
        sys.path.insert(0, src)
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)


def main(argv: list[str] | None = None) -> int:
    _ensure_qaflow()
    from qaflow.core.errors import ConfigError
    from qaflow.flinkjob.args import parse

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = parse(argv)
    except ConfigError as exc:
        print(f"score_job: {exc}", file=sys.stderr)
        return 2
    from qaflow.flinkjob.topology import run

    run(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
