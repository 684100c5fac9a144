"""``python -m alphacut_dev.moneysim``: explore scopes, plant a bug, replay a run (see the package)."""

from __future__ import annotations

import argparse
import sys

from alphacut_dev.moneysim.explore import exhaustive, random_walks, replay, replay_seed
from alphacut_dev.moneysim.mutations import PLANTED
from alphacut_dev.moneysim.scopes import CI_SLICE, CI_WALKS, SCOPES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alphacut_dev.moneysim")
    parser.add_argument("--scope", choices=sorted(SCOPES), action="append", help="default: the CI slice's")
    parser.add_argument("--runs", type=int, help="runs per scope (default: the CI slice's)")
    parser.add_argument("--walks", type=int, help="random walks instead of depth first, this many seeds")
    parser.add_argument("--seconds", type=float, default=1e9)
    parser.add_argument("--plant", choices=sorted(PLANTED), action="append", default=[])
    parser.add_argument("--replay", help="a failing run's choices, comma-separated")
    parser.add_argument("--seed", type=int, help="a failing walk's seed, to replay")
    args = parser.parse_args(argv)
    planted = frozenset(args.plant)
    names = args.scope or (["wide"] if args.walks else sorted(CI_SLICE))
    if args.replay is not None or args.seed is not None:
        scope = SCOPES[names[0]]
        if args.seed is not None:
            run = replay_seed(scope, args.seed, planted)
        else:
            run = replay(scope, [int(c) for c in args.replay.split(",") if c], planted)
        print("\n".join(run.trace))
        print(f"VIOLATION: {run.violation}" if run.violation else "no violation")
        return 1 if run.violation else 0
    found = False
    for name in names:
        if args.walks is not None:
            report = random_walks(SCOPES[name], range(args.walks), planted, seconds=args.seconds)
        else:
            limit = args.runs or CI_SLICE.get(name, CI_WALKS)
            report = exhaustive(SCOPES[name], limit, args.seconds, planted)
        print(report.describe(), flush=True)
        found = found or bool(report.violation)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
