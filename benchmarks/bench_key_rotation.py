"""Benchmark: what one more rotation, suspension and revocation of a key cost after it was rotated
``n`` times with a grace (issue 90), with the key store of this checkout and, as the baseline in the
same run, the key store of an earlier commit (``--before``, read with ``git show``).

Run on purpose, not in the tests. moto's DynamoDB in this process (the usage table of the
template, with the local stack's journalled transactions: moto's own copies the whole table for
each one); each key is rotated ``n`` times an hour's grace apart by a minute, so every old value is
still in its grace; then one more rotation, a suspension, a reinstatement and a revocation are
timed (wall ms, the median over ``--repeat`` keys) and their DynamoDB calls counted.

    .venv/bin/python benchmarks/bench_key_rotation.py [--before 1023779] [--rotations 1,10,50,150]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
from alphacut.aws.keys import store as store_now
from alphacut_dev.local.dynamodb_consistency import serialise_dynamodb_writes
from alphacut_dev.template import table_definition
from moto import mock_aws

TABLE = "bench-keys"
SECRET = b"bench-key-hash-secret"
GRACE = 3600
STORE_PATH = "layers/core/alphacut/aws/keys/store.py"


class Counted:
    """A DynamoDB client counting the calls made through it."""

    def __init__(self) -> None:
        self.real, self.calls = boto3.client("dynamodb"), 0
        self.exceptions = self.real.exceptions

    def __getattr__(self, name: str) -> Any:
        def counted(**request: Any) -> Any:
            self.calls += 1
            return getattr(self.real, name)(**request)

        return counted


def store_at(commit: str) -> ModuleType:
    """The key store module as it was at ``commit``."""
    source = subprocess.run(
        ["git", "show", f"{commit}:{STORE_PATH}"], capture_output=True, text=True, check=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "store_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("alphacut.aws.keys.store_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def costs(module: ModuleType, rotations: int) -> dict[str, tuple[float, int]]:
    """(wall ms, DynamoDB calls) of one more rotation, a suspension and a revocation."""
    now = [1_900_000_000.0]
    db = Counted()
    store = module.KeyStore(TABLE, SECRET, clock=lambda: now[0], db=db)
    key_id = store.create("bench-shop", "credits").key.key_id
    for _ in range(rotations):
        store.rotate(key_id, GRACE)
        now[0] += 60 * 50 / max(rotations, 50)  # all of them within the hour
    measured = {}
    for verb, act in (
        ("rotate", lambda: store.rotate(key_id, GRACE)),
        ("suspend", lambda: store.suspend(key_id, "bench")),
        ("reinstate", lambda: store.reinstate(key_id)),
        ("revoke", lambda: store.revoke(key_id)),
    ):
        calls, wall = db.calls, time.perf_counter()
        act()
        measured[verb] = ((time.perf_counter() - wall) * 1000, db.calls - calls)
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="1023779", help="the commit whose key store is the baseline")
    parser.add_argument("--rotations", default="1,10,50,150")
    parser.add_argument("--repeat", type=int, default=3, help="keys measured a row (the median ms)")
    args = parser.parse_args()
    for name, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "x")):
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "x")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    stores = {f"before ({args.before})": store_at(args.before), "now": store_now}
    verbs = ("rotate", "suspend", "reinstate", "revoke")
    print("| key store | rotations before | " + " | ".join(f"{v}: ms, calls" for v in verbs) + " |")
    print("|---|---|" + "---|" * len(verbs))
    serialise_dynamodb_writes()  # as the local stack: a transaction journalled, not a deep copy of the table
    with mock_aws():
        boto3.client("dynamodb").create_table(**table_definition("UsageTable", TABLE))
        for n in [int(part) for part in args.rotations.split(",")]:
            for label, module in stores.items():
                runs = [costs(module, n) for _ in range(args.repeat)]
                cells = " | ".join(
                    f"{statistics.median(run[v][0] for run in runs):.0f}, {runs[0][v][1]}" for v in verbs
                )
                print(f"| {label} | {n} | {cells} |", flush=True)
    print(f"(python {sys.version.split()[0]}, moto in this process)")


if __name__ == "__main__":
    main()
