"""Benchmark: one account's paid calls a second before its balance item's partition throttles
(issue 93, item 8), on moto with the ledger's own writes.

Every paid call of every key of an account writes the account's one balance item twice (the
debit with its in-flight entry, then the entry removed: ``alphacut.aws.ledger.reservations``), and
DynamoDB bills a write by the item's size (a unit a started KB) and allows a partition 1,000 write
units a second. The item grows with the entries in flight: about ``rate x entry life`` of them,
an entry living from the debit to its removal (two writes' latency; 10 ms each assumed, as
DynamoDB's single-digit milliseconds). Measured here: the item's size with N entries in flight,
made by ``CreditLedger.start_reservation`` (the real debit), by DynamoDB's size rules
(``alphacut_dev.local.dynamodb_capacity.item_size``); printed: units per write, and the calls a
second the partition takes at that size, and the steady rate where ``rate x units per call`` meets
1,000 (the account's ceiling), against the account's keys at their plan's rate.

    .venv/bin/python benchmarks/bench_account_ceiling.py [--entry-ms 20] [--keys 25 --key-rate 5]
"""

from __future__ import annotations

import argparse
import math
import os

import boto3
from alphacut.aws.ledger.credits import CreditLedger
from alphacut_dev.local.dynamodb_capacity import item_size
from alphacut_dev.template import table_definition
from moto import mock_aws

PARTITION_WRITE_UNITS = 1000
WRITES_PER_CALL = 2  # the debit with its entry, the entry removed (a delivered call; a failed one 4)
TABLE = "bench-ceiling"


def balance_size(ledger: CreditLedger, in_flight: int) -> int:
    """The balance item's bytes with ``in_flight`` reservations debited and not yet finished."""
    ledger.open("acct")
    ledger.top_up("acct", 10_000_000)
    for n in range(in_flight):
        ledger.start_reservation(
            "acct", f"call-{n:06d}-{os.urandom(8).hex()}", 1000, seconds=90, route="/v1/cutout"
        )
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import DynamoType, dynamodb_backends

    table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(TABLE)
    return item_size(table.get_item(DynamoType({"S": "credits#acct"}), DynamoType({"S": "balance"})))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entry-ms", type=float, default=20.0, help="an entry's life: debit to removal")
    parser.add_argument("--keys", type=int, default=25, help="the account's keys (KeysPerAccount)")
    parser.add_argument(
        "--key-rate", type=float, default=5.0, help="each key's calls a second (credits plan)"
    )
    args = parser.parse_args()
    os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    sizes = {}
    for in_flight in (0, 1, 5, 10, 20, 50, 100, 250):
        with mock_aws():
            boto3.client("dynamodb").create_table(**table_definition("UsageTable", TABLE))
            sizes[in_flight] = balance_size(CreditLedger(TABLE), in_flight)
    entry = (sizes[250] - sizes[0]) / 250
    print(
        "| entries in flight | item bytes | write units a write | paid calls a second the partition takes |"
    )
    print("|---|---|---|---|")
    for in_flight, size in sizes.items():
        units = math.ceil(size / 1024)
        print(f"| {in_flight} | {size} | {units} | {PARTITION_WRITE_UNITS / (WRITES_PER_CALL * units):.0f} |")
    ceiling = 0.0
    for rate in range(1, 2001):  # the steady rate where the item's own growth meets the partition
        in_flight = rate * args.entry_ms / 1000
        units = math.ceil((sizes[0] + entry * in_flight) / 1024)
        if rate * WRITES_PER_CALL * units > PARTITION_WRITE_UNITS:
            break
        ceiling = rate
    asked = args.keys * args.key_rate
    print(f"\nan entry: {entry:.0f} bytes; an entry's life {args.entry_ms:g} ms")
    print(f"the account's ceiling: {ceiling:.0f} paid calls a second (steady)")
    print(
        f"{args.keys} keys at {args.key_rate:g} a second: {asked:.0f} a second, {asked / ceiling:.0%} of it"
    )
    burst = 2 * asked  # every key's burst (twice its rate)
    units = math.ceil((sizes[0] + entry * burst) / 1024)
    print(f"were all their bursts' {burst:.0f} calls debited within one entry's life: {units} units a write")


if __name__ == "__main__":
    main()
