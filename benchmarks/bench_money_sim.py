"""The money simulator's long run: every scope of the CI slice explored whole, wider scopes (a
preemption bound of 2, more faults and clock moves) as far as the budget goes, and seeded random
walks over the wide scope; the planted bugs found, each with how many runs it took. Prints a table
(scope, its budgets, schedules, runs taken to rest, distinct states, steps, seconds, whether the
scope was exhausted, any violation) and the totals.

Scopes run in parallel processes (``--workers``, the cores by default); each one stops at
``--runs`` schedules (or when exhausted).

Usage::

    .venv/bin/python benchmarks/bench_money_sim.py                    # >= 1,000,000 schedules
    .venv/bin/python benchmarks/bench_money_sim.py --runs 20000 --walks 2000   # a quick look
    .venv/bin/python benchmarks/bench_money_sim.py --only payments payment-order crossings wide
    .venv/bin/python benchmarks/bench_money_sim.py --issue-90       # the ten bugs against the slice
    .venv/bin/python benchmarks/bench_money_sim.py --issue-90 --only key-midnight auto-top-up
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dev"))

from alphacut_dev.moneysim.explore import exhaustive, random_walks
from alphacut_dev.moneysim.mutations import ISSUE_90, PLANTED
from alphacut_dev.moneysim.scopes import CI_SLICE, CI_WALKS, SCOPES
from alphacut_dev.moneysim.world import Scope

WIDER = {
    "two-sweeps-p2": SCOPES["two-sweeps"].smaller(name="two-sweeps-p2", preemptions=2, clock_moves=2),
    "release-wide": SCOPES["release-faults"].smaller(name="release-wide", sweeps=2, kills=1, preemptions=2),
    "two-calls-wide": SCOPES["two-calls"].smaller(
        name="two-calls-wide", faults=1, clock_moves=2, ttl=1, preemptions=2
    ),
    "tasks-wide": SCOPES["tasks"].smaller(name="tasks-wide", faults=1, clock_moves=2, ttl=1, preemptions=2),
    "lagging-wide": SCOPES["lagging-index"].smaller(name="lagging-wide", faults=1, ttl=1, clock_moves=2),
}


def budgets(scope: Scope) -> str:
    fields = asdict(scope)
    actors = f"{len(scope.calls)}c {len(scope.tasks)}t {len(scope.top_ups)}u"
    return (
        f"{actors}, sweeps {fields['sweeps']}, kills {fields['kills']}, faults {fields['faults']}, "
        f"clock {fields['clock_moves']}, ttl {fields['ttl']}, lag {'y' if scope.lag else 'n'}, "
        f"P {fields['preemptions']}"
    )


def explore(job: tuple[str, Scope, str, int]) -> dict[str, object]:
    kind, scope, planted, runs = job
    plant = frozenset({planted}) if planted else frozenset()
    report = (
        random_walks(scope, range(runs), plant) if kind == "walks" else exhaustive(scope, runs, planted=plant)
    )
    return {
        "scope": scope.name + (f" + {planted}" if planted else ""),
        "how": kind,
        "budgets": budgets(scope),
        "schedules": report.schedules,
        "completed": report.completed,
        "states": report.states,
        "steps": report.steps,
        "seconds": report.seconds,
        "exhausted": report.exhausted,
        "violation": report.violation,
        "trace": report.describe() if report.violation else "",
    }


def find(job: tuple[str, str, int]) -> tuple[str, str, int, str, float]:
    """One of issue 90's bugs planted, one scope of the slice explored as the suite does: the
    schedules it took to find it (or explored without), and the violation."""
    bug, scope, runs = job
    plant = frozenset({bug})
    if scope == "wide":
        report = random_walks(SCOPES[scope], range(runs), plant)
    else:
        report = exhaustive(SCOPES[scope], runs, planted=plant)
    return bug, scope, report.schedules, report.violation, report.seconds


def issue_90(workers: int, scale: float, only: list[str] | None) -> int:
    """Each of issue 90's ten bugs against every scope of the suite's slice (``scale`` times its
    runs; ``only``: these scopes): a table of the scopes that find each and the schedules it took."""
    runs = {name: count for name, count in {**CI_SLICE, "wide": CI_WALKS}.items() if not only or name in only}
    jobs = [(bug, scope, int(count * scale)) for bug in ISSUE_90 for scope, count in runs.items()]
    started = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        rows = list(pool.map(find, jobs))
    wall = time.perf_counter() - started
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {workers} workers")
    print(f"the slice's runs x{scale:g}, {wall:.0f} s wall\n")
    print("| bug | found by (schedules) | first violation |")
    print("|---|---|---|")
    found = 0
    for bug in ISSUE_90:
        hits = [(scope, n, v) for b, scope, n, v, _ in rows if b == bug and v]
        found += bool(hits)
        where = ", ".join(f"{scope} ({n:,})" for scope, n, _ in hits) or "none"
        print(f"| {bug} | {where} | {hits[0][2][:90] if hits else '-'} |")
    print(f"\nfound: {found} of {len(ISSUE_90)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--issue-90", action="store_true", help="issue 90's ten bugs against the slice")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="with --issue-90: the slice's runs times this"
    )
    parser.add_argument("--runs", type=int, default=250_000, help="schedules at most per scope")
    parser.add_argument("--walks", type=int, default=20_000, help="random walks over the wide scope")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", nargs="+", help="these scopes (and the bugs planted in them) alone")
    args = parser.parse_args()
    if args.issue_90:
        return issue_90(args.workers, args.scale, args.only)
    jobs: list[tuple[str, Scope, str, int]] = [
        ("depth first", SCOPES[name], "", args.runs) for name in CI_SLICE
    ]
    jobs += [("depth first", scope, "", args.runs) for scope in WIDER.values()]
    jobs.append(("walks", SCOPES["wide"], "", args.walks))
    jobs += [("depth first", SCOPES[scope], bug, args.runs) for bug, (scope, _) in PLANTED.items()]
    if args.only:
        jobs = [job for job in jobs if job[1].name in args.only]
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(explore, jobs))
    wall = time.perf_counter() - started
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} cores, {args.workers} workers")
    print(
        "| scope | how | budgets | schedules | to rest | states | steps | seconds | exhausted | violation |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---|---|")
    for row in rows:
        exhausted = "yes" if row["exhausted"] else "no"
        print(
            f"| {row['scope']} | {row['how']} | {row['budgets']} | {row['schedules']:,} "
            f"| {row['completed']:,} | {row['states']:,} | {row['steps']:,} | {row['seconds']:.0f} "
            f"| {exhausted} | {row['violation'] or '-'} |"
        )
    clean = [r for r in rows if " + " not in str(r["scope"])]
    total = sum(int(str(r["schedules"])) for r in clean)
    states = sum(int(str(r["states"])) for r in clean)
    print(f"\nthe ledger as it is: {total:,} schedules, {states:,} states, {wall:.0f} s wall")
    planted = [r for r in rows if " + " in str(r["scope"])]
    unfound = [r["scope"] for r in planted if not r["violation"]]
    print(
        f"planted bugs found: {len(planted) - len(unfound)} of {len(planted)}"
        + (f" (missed: {unfound})" if unfound else "")
    )
    for row in clean:
        if row["violation"]:
            print(row["trace"])
    return 1 if unfound or any(r["violation"] for r in clean) else 0


if __name__ == "__main__":
    sys.exit(main())
