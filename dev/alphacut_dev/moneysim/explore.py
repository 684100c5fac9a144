"""Exploring the money protocol's runs: every run of a small scope (depth first over the choices,
a state met before not explored again), or seeded random walks over a larger one. A run that
breaks an invariant stops the search and comes back as its choices and a readable trace: the
choices replay it exactly (``replay``), and so does a walk's seed.

Usage::

    report = exhaustive(SCOPES["two-calls"], limit=20_000)
    report.violation or print(report.schedules, report.states)
    report = random_walks(SCOPES["wide"], seeds=range(1000))
    run = replay(SCOPES["two-calls"], [0, 3, 0, 1])      # run.trace, run.violation
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from alphacut_dev.moneysim import mutations
from alphacut_dev.moneysim.invariants import Violation
from alphacut_dev.moneysim.world import Run, Scope, World, patched


@dataclass
class Report:
    scope: str
    schedules: int = 0  # runs made (each a distinct list of choices)
    completed: int = 0  # runs taken to rest and checked there
    states: int = 0  # distinct states met
    steps: int = 0
    seconds: float = 0.0
    exhausted: bool = False  # every run of the scope was explored
    failing: Run | None = None
    seed: int | None = None
    planted: tuple[str, ...] = ()

    @property
    def violation(self) -> str:
        return self.failing.violation if self.failing else ""

    def describe(self) -> str:
        planted = f" planted {','.join(self.planted)}" if self.planted else ""
        exhausted = ", exhausted" if self.exhausted else ""
        lines = [
            (
                f"scope {self.scope}{planted}: {self.schedules} schedules ({self.completed} to rest), "
                f"{self.states} states, {self.steps} steps, {self.seconds:.1f} s{exhausted}"
            )
        ]
        if self.failing is not None:
            lines.append(f"VIOLATION: {self.failing.violation}")
            if self.seed is not None:
                lines.append(f"seed: {self.seed}")
            lines.append("choices: " + ",".join(map(str, self.failing.choices)))
            lines += [f"  {line}" for line in self.failing.trace]
        return "\n".join(lines)


def _one_run(scope: Scope, planted: frozenset[str], choose: Any, report: Report) -> Run:
    """A run from the start: ``choose(depth, options, world)`` gives the index to take, or None to
    stop there (a state met before, nothing awake). A violation ends it."""
    run = Run()
    holder: list[World] = []
    with patched(holder), mutations.planted(planted):
        world = World(scope, planted)
        holder.append(world)
        try:
            world.begin()
            world.check()
            while True:
                options = world.options()
                if not any(o[0] == "step" for o in options):
                    options = [("rest",), *options]
                index = choose(len(run.choices), options, world)
                if index is None:
                    break
                run.choices.append(index)
                run.widths.append(len(options))
                report.steps += 1
                if options[index][0] == "rest":
                    world.trace.append("rest: everything due runs without faults")
                    world.finish()
                    report.completed += 1
                    break
                world.step(options[index])
        except Violation as violation:
            run.violation = str(violation)
        finally:
            run.trace = world.trace
            world.close()
    return run


class _DepthFirst:
    """The choices of one run of ``exhaustive``: ``prefix`` replayed, then the first option awake;
    the sleep set of each depth kept for the next run's choice."""

    def __init__(self, prefix: list[int], visited: dict[int, frozenset[Any]]):
        self.prefix, self.visited = prefix, visited
        self.asleep: list[set[int]] = []
        self.sleep: list[frozenset[Any]] = [frozenset()]

    def __call__(self, depth: int, options: list[Any], world: World) -> int | None:
        here = self.sleep[depth]
        if depth >= len(self.prefix):  # a node this search has not been at on this path
            state = world.fingerprint()
            stored = self.visited.get(state)
            if stored is not None and stored <= here:
                return None
            self.visited[state] = here if stored is None else stored & here
        sleeping = {i for i, option in enumerate(options) if option in here}
        self.asleep.append(sleeping)
        first = self.prefix[depth] if depth < len(self.prefix) else 0
        index = next((i for i in range(first, len(options)) if i not in sleeping), None)
        if index is None:
            return None
        done = here | {o for o in options[:index] if o[0] == "step"}
        self.sleep.append(frozenset(o for o in done if world.independent(o, options[index])))
        return index

    def next_prefix(self, run: Run) -> list[int] | None:
        """The deepest choice with an option left that is not asleep there, taken (None: done)."""
        choices, widths = list(run.choices), list(run.widths)
        while choices:
            depth = len(choices) - 1
            later = [i for i in range(choices[-1] + 1, widths[-1]) if i not in self.asleep[depth]]
            if later:
                return [*choices[:-1], later[0]]
            choices.pop()
            widths.pop()
        return None


class _Walk:
    """The choices of one random walk: a plain step or rest mostly, anything else at ``odds``."""

    def __init__(self, seed: int, odds: float, seen: set[int]):
        self.draw, self.odds, self.seen = random.Random(seed), odds, seen

    def __call__(self, depth: int, options: list[Any], world: World) -> int:
        self.seen.add(world.fingerprint())
        plain = [i for i, o in enumerate(options) if o[0] == "rest" or (o[0] == "step" and o[2] == "normal")]
        other = [i for i in range(len(options)) if i not in plain]
        if other and (not plain or self.draw.random() < self.odds):
            return self.draw.choice(other)
        return self.draw.choice(plain)


def exhaustive(
    scope: Scope, limit: int = 1_000_000, seconds: float = 1e9, planted: frozenset[str] = frozenset()
) -> Report:
    """Every run of ``scope`` up to ``limit`` runs or ``seconds``: depth first, with two reductions
    that keep every state reachable in the scope: a state met before (with no fewer steps left to
    take there) is not explored again, and of two steps that commute (``World.independent``) one
    order is enough (sleep sets, Godefroid 1996)."""
    report = Report(scope.name, planted=tuple(sorted(planted)))
    visited: dict[int, frozenset[Any]] = {}
    prefix: list[int] | None = []
    started = time.perf_counter()
    while prefix is not None and report.schedules < limit and time.perf_counter() - started < seconds:
        chooser = _DepthFirst(prefix, visited)
        run = _one_run(scope, planted, chooser, report)
        report.schedules += 1
        if run.violation:
            report.failing = run
            break
        prefix = chooser.next_prefix(run)
    report.exhausted = prefix is None
    report.states = len(visited)
    report.seconds = time.perf_counter() - started
    return report


def random_walks(
    scope: Scope,
    seeds: Any,
    planted: frozenset[str] = frozenset(),
    seconds: float = 1e9,
    fault_odds: float = 0.15,
) -> Report:
    """One run per seed, each choice drawn at random (faults, kills and the scheduler's own moves
    less often than a plain step, ``fault_odds``); the first violation stops."""
    report = Report(scope.name, planted=tuple(sorted(planted)))
    seen: set[int] = set()
    started = time.perf_counter()
    for seed in seeds:
        if time.perf_counter() - started > seconds:
            break
        run = _one_run(scope, planted, _Walk(seed, fault_odds, seen), report)
        report.schedules += 1
        if run.violation:
            report.failing, report.seed = run, seed
            break
    report.states = len(seen)
    report.seconds = time.perf_counter() - started
    return report


def replay(scope: Scope, choices: list[int], planted: frozenset[str] = frozenset()) -> Run:
    """The run these choices make (as a report printed them), with its trace."""
    report = Report(scope.name)
    return _one_run(
        scope, planted, lambda depth, options, world: choices[depth] if depth < len(choices) else None, report
    )


def replay_seed(scope: Scope, seed: int, planted: frozenset[str] = frozenset()) -> Run:
    report = random_walks(scope, [seed], planted)
    return report.failing or Run()
