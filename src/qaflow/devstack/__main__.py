"""``python -m qaflow.devstack up|down|status [--state-dir DIR]``: prints JSON."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from qaflow.devstack.errors import DevStackError
from qaflow.devstack.stack import down, status, up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qaflow.devstack", description=__doc__)
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--state-dir", help="default: <repo>/.devstack")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = {"up": up, "down": down, "status": status}[args.action](args.state_dir)
    except DevStackError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
