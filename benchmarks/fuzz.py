"""Fuzz every parser of untrusted input for a while (default 10 minutes in all, shared between
the properties of alphacut_dev.fuzz) and print cases run and failures per property.

    .venv/bin/python benchmarks/fuzz.py [--minutes 10]
"""

from __future__ import annotations

import argparse
import time
import traceback
import warnings

from alphacut_dev.fuzz import CASES, PROPERTIES, check

ROUND = 500  # examples per call; rounds repeat until the property's share of time is spent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # Pillow warns about every damaged file it still reads
    share = args.minutes * 60 / len(PROPERTIES)
    rows = []
    for name in PROPERTIES:
        failures = 0
        started = time.monotonic()
        while time.monotonic() - started < share:
            try:
                check(name, ROUND)
            except Exception:  # noqa: BLE001 - a failure is what we count (and show)
                failures += 1
                traceback.print_exc()
        rows.append((name, CASES[name], failures, time.monotonic() - started))
    print("\n| property | cases run | failures | seconds |\n|---|---|---|---|")
    for name, cases, failures, seconds in rows:
        print(f"| {name} | {cases} | {failures} | {seconds:.0f} |")
    print(f"| all | {sum(r[1] for r in rows)} | {sum(r[2] for r in rows)} | {sum(r[3] for r in rows):.0f} |")


if __name__ == "__main__":
    main()
