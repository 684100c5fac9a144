"""Where the test suite's time goes: wall time and the machine's busy CPU time around each test.

As a pytest plugin it appends one line per test (node id, wall seconds, busy CPU seconds of the
whole machine from /proc/stat, so the local stack's processes count, the xdist worker and the
time it ended) to ``SUITE_CPU_FILE``; as a script it prints the folders' table, the bound two
cores put on the suite's time and, under xdist, each worker's span (first start to last end).
Under xdist a test's busy CPU is the whole machine's, the other worker's included.

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
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    took = time.perf_counter() - wall
    line = f"{item.nodeid}\t{took:.2f}\t{busy_seconds() - busy:.2f}\t{worker}\t{time.time():.2f}\n"
    with open(os.environ.get("SUITE_CPU_FILE", "build/suite_cpu.tsv"), "a") as out:
        out.write(line)


def main(path: str) -> None:
    folders: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    spans: dict[str, list[float]] = {}  # worker -> [first start, last end, tests]
    for line in Path(path).read_text().splitlines():
        nodeid, wall, busy, *where = line.split("\t")
        if len(where) == 2:
            worker, ended = where[0], float(where[1])
            span = spans.setdefault(worker, [ended - float(wall), ended, 0])
            span[0], span[1], span[2] = min(span[0], ended - float(wall)), max(span[1], ended), span[2] + 1
        row = folders[nodeid.split("/")[1]]
        row[0], row[1], row[2] = row[0] + float(wall), row[1] + float(busy), row[2] + 1
    print("| folder | tests | wall s | busy CPU s | cores busy |\n|---|---|---|---|---|")
    for folder, (wall, busy, count) in sorted(folders.items(), key=lambda item: -item[1][0]):
        print(f"| {folder} | {count} | {wall:.0f} | {busy:.0f} | {busy / wall if wall else 0:.2f} |")
    wall = sum(row[0] for row in folders.values())
    busy = sum(row[1] for row in folders.values())
    cores, tests = os.cpu_count() or 1, sum(int(row[2]) for row in folders.values())
    print(f"| all | {tests} | {wall:.0f} | {busy:.0f} | {busy / wall:.2f} |")
    if len(spans) <= 1:
        print(f"\nbound: {busy:.0f} CPU s on {cores} cores cannot take less than {busy / cores:.0f} s")
    else:  # each test's busy CPU counts the other worker's too: the sums count it twice
        print("\n(under xdist a test's busy CPU is the whole machine's: no bound from these sums)")
        start = min(span[0] for span in spans.values())
        print("\n| worker | tests | started s | ended s |\n|---|---|---|---|")
        for worker, (first, last, count) in sorted(spans.items()):
            print(f"| {worker} | {count:.0f} | {first - start:.0f} | {last - start:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1])
