"""Where the test suite's time goes: wall time and the machine's busy CPU time around each test.

As a pytest plugin it appends one line per test (node id, wall seconds, busy CPU seconds of the
whole machine from /proc/stat, so the local stack's processes count) to ``SUITE_CPU_FILE``; as a
script it prints the folders' table and the bound two cores put on the suite's time.

Usage::

    SUITE_CPU_FILE=build/suite_cpu.tsv PYTHONPATH=benchmarks .venv/bin/pytest -p suite_cpu
    .venv/bin/python benchmarks/suite_cpu.py build/suite_cpu.tsv
"""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU time the machine spent on anything but idling and waiting for I/O, since boot."""
    with open("/proc/stat") as stat:
        ticks = [int(x) for x in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    wall, busy = time.perf_counter(), busy_seconds()
    yield
    line = f"{item.nodeid}\t{time.perf_counter() - wall:.2f}\t{busy_seconds() - busy:.2f}\n"
    with open(os.environ.get("SUITE_CPU_FILE", "build/suite_cpu.tsv"), "a") as out:
        out.write(line)


def main(path: str) -> None:
    folders: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for line in Path(path).read_text().splitlines():
        nodeid, wall, busy = line.split("\t")
        row = folders[nodeid.split("/")[1]]
        row[0], row[1], row[2] = row[0] + float(wall), row[1] + float(busy), row[2] + 1
    print("| folder | tests | wall s | busy CPU s | cores busy |\n|---|---|---|---|---|")
    for folder, (wall, busy, count) in sorted(folders.items(), key=lambda item: -item[1][0]):
        print(f"| {folder} | {count} | {wall:.0f} | {busy:.0f} | {busy / wall if wall else 0:.2f} |")
    wall = sum(row[0] for row in folders.values())
    busy = sum(row[1] for row in folders.values())
    cores, tests = os.cpu_count() or 1, sum(int(row[2]) for row in folders.values())
    print(f"| all | {tests} | {wall:.0f} | {busy:.0f} | {busy / wall:.2f} |")
    print(f"\nbound: {busy:.0f} CPU s on {cores} cores cannot take less than {busy / cores:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1])
