"""Benchmark: ``Client.batch`` against a key's rate on the local stack, paced and not.

60 photos (eval photos, 320 px, JPEG) at concurrency 8 through ``/v1/cutout`` (output=mask) on keys
whose usage plans allow 1, 2 and 10 requests a second (burst 1, 2 and 10), by this checkout's
client (one pace for all workers, learned from the answers: ``alphacut_client.pacing``) and, as
the baseline in the same run, the client before it (``--baseline REV``: its client.py from git,
each worker retrying its own 429s). First the paced client on a key with no limit in the way (1000
a second): the stack's own time for the photos on this machine, a bound of its own. Printed per key
and client: items completed, failed, 429s seen (every answer counted), wall time, the rate's bound
(photos / rate seconds: nothing can finish sooner), and the wall time's ratio to the larger of the
two bounds. ``--type stamp`` runs the route without a model (the stamp matte is found on the
picture itself): on a machine whose stack is slower than the rate, the calls are then cheap enough
for the rate, not the stack, to be the bound.

    .venv/bin/python benchmarks/bench_client_pacing.py [--photos 60] [--concurrency 8] [--rates 1 2 10]
        [--type stamp]
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from alphacut.aws.keys.admin import KeyAdmin
from alphacut.aws.ledger.credits import CreditLedger
from alphacut.models.engines import describe_cpu
from alphacut_dev.data import EVAL
from alphacut_dev.local.stack import STACK_NAME, LocalStack, free_port
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "3e517e5"  # the client before its pacer


class Answers:
    """Every answer's status, from every thread (requests.Session.send wrapped once)."""

    def __init__(self) -> None:
        self.statuses: collections.Counter[int] = collections.Counter()
        self._lock = threading.Lock()
        original = requests.Session.send

        def send(session, request, **kwargs):
            response = original(session, request, **kwargs)
            with self._lock:
                self.statuses[response.status_code] += 1
            return response

        requests.Session.send = send  # type: ignore[method-assign]

    def take(self) -> collections.Counter[int]:
        with self._lock:
            taken, self.statuses = self.statuses, collections.Counter()
        return taken


def baseline_client(rev: str):
    """The ``Client`` class of ``alphacut_client`` at ``rev``, loaded beside this checkout's."""
    source = subprocess.run(
        ["git", "show", f"{rev}:clients/python/alphacut_client/client.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_client.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_client", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["baseline_client"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.Client


def photos(folder: Path, count: int) -> list[Path]:
    sources = sorted((EVAL / "general" / "images").iterdir())
    paths = []
    for index in range(count):
        image = Image.open(sources[index % len(sources)]).convert("RGB")
        image.thumbnail((320, 320))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        path = folder / f"p{index:03d}.jpg"
        path.write_bytes(buffer.getvalue())
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rates", type=float, nargs="+", default=[1.0, 2.0, 10.0])
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--type", default="auto", help="the cutout's type (stamp: no model run)")
    args = parser.parse_args()
    from alphacut_client import Client

    clients = {"paced (this checkout)": Client, f"baseline ({args.baseline})": baseline_client(args.baseline)}
    answers = Answers()
    stack = LocalStack(port=free_port(), log=lambda line: None)
    stack.start()
    rows = []
    try:
        os.environ.update(stack.aws_env())
        gateway = stack.client("apigateway")
        admin = KeyAdmin(STACK_NAME, gateway, CreditLedger(stack.physical["UsageTable"]), stack.key_store())
        plans = [(1000.0, 1000)] + [(rate, int(max(1, rate))) for rate in args.rates]
        for rate, burst in plans:
            gateway.create_usage_plan(
                name=f"{STACK_NAME}-pace-{rate:g}", throttle={"rateLimit": rate, "burstLimit": burst}
            )
        admin._plans = None  # the plans just made
        with tempfile.TemporaryDirectory() as work:
            paths = photos(Path(work), args.photos)
            for rate, _ in plans:
                for name, client_class in clients.items():
                    if rate == 1000.0 and not name.startswith("paced"):
                        continue
                    key = admin.create(f"pace-{rate:g}-{time.time_ns()}", f"pace-{rate:g}")
                    client = client_class(stack.url, key.value)
                    answers.take()
                    started = time.perf_counter()
                    items = client.batch(paths, concurrency=args.concurrency, output="mask", type=args.type)
                    wall = time.perf_counter() - started
                    seen = answers.take()
                    done = sum(item.ok for item in items)
                    bound = args.photos / rate
                    rows.append((rate, name, done, len(items) - done, seen[429], wall, bound))
                    print(rows[-1], flush=True)
    finally:
        stack.stop()
    print(
        f"\nmachine: {describe_cpu()}; {args.photos} photos (320 px JPEG), type {args.type}, "
        f"concurrency {args.concurrency}"
    )
    print(
        "| key's rate /s | client | completed | failed | 429s seen | wall s | rate's bound s "
        "| stack's own s | wall / larger bound |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    # The stack's own time: the same photos with no limit in the way, the floor any rate meets.
    stack_bound = next(row[5] for row in rows if row[0] == 1000.0)
    for rate, name, done, failed, limited, wall, bound in rows:
        label = "1000 (no limit in the way)" if rate == 1000.0 else f"{rate:g}"
        print(
            f"| {label} | {name} | {done} | {failed} | {limited} | {wall:.1f} | {bound:.1f} "
            f"| {stack_bound:.1f} | {wall / max(bound, stack_bound):.2f} |"
        )


if __name__ == "__main__":
    main()
