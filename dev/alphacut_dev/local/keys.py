"""``python -m alphacut_dev.local.keys ...``: ``alphacut keys`` (and ``alphacut usage``) against
the local stack that ``make serve`` runs (its moto endpoint, stack name and usage table, read from
the file the stack writes while it is up). The shipped CLI knows nothing of the local stack: it
manages keys on whatever AWS its environment points at.

Usage::

    python -m alphacut_dev.local.keys create --customer acme --plan credits
    python -m alphacut_dev.local.keys credit --key <key id> --add 37
    python -m alphacut_dev.local.keys import shops.csv > keys.csv     # customer,plan in
    python -m alphacut_dev.local.keys rotate <key id> --grace 3600
    python -m alphacut_dev.local.keys revoke <key id>
    python -m alphacut_dev.local.keys migrate
    python -m alphacut_dev.local.keys list
    python -m alphacut_dev.local.keys usage statement --month 2026-11 --format json
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

    args = sys.argv[1:] if argv is None else argv
    command = (
        ["usage", "--stack", local["stack"], *args[1:]]
        if args[:1] == ["usage"]
        else ["keys", "--stack", local["stack"], *args]
    )
    return cli(command)


if __name__ == "__main__":
    sys.exit(main())
