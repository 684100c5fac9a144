"""``python -m alphacut_dev.local.keys ...``: ``alphacut keys`` against the local stack that
``make serve`` runs (its moto endpoint and stack name, read from the file the stack writes while
it is up). The shipped CLI knows nothing of the local stack: it manages keys on whatever AWS its
environment points at.

Usage::

    python -m alphacut_dev.local.keys create --customer acme --plan starter
    python -m alphacut_dev.local.keys list
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
STACK_FILE = ROOT / ".cache" / "local" / "stack.json"  # written by python -m alphacut_dev.local


def main(argv: list[str] | None = None) -> int:
    if not STACK_FILE.exists():
        print(f"no local stack running ({STACK_FILE} missing): start it with make serve", file=sys.stderr)
        return 2
    local = json.loads(STACK_FILE.read_text())
    os.environ.update(local["env"])
    from alphacut.cli import main as cli

    return cli(["keys", "--stack", local["stack"], *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
