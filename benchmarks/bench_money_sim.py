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
from alphacut_dev.moneysim.mutations import PLANTED
from alphacut_dev.moneysim.scopes import CI_SLICE, SCOPES
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=250_000, help="schedules at most per scope")
    parser.add_argument("--walks", type=int, default=20_000, help="random walks over the wide scope")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", nargs="+", help="these scopes (and the bugs planted in them) alone")
    args = parser.parse_args()
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
