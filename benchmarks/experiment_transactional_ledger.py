"""Experiment (not shipped): the ledger as it was before the single-item design, under
bench_money's load and rules, to choose the design by measuring.

The old design, restored in the driver process from git history (3dfc6fb): a reservation is one
transaction of the balance and the hold, after reading every hold of the key (``release_expired``);
a release is a transaction of the hold and the balance; the usage counters are one item per route
and one per day (``COUNTER_SHARDS = 1``).

    .venv/bin/python benchmarks/experiment_transactional_ledger.py --hours 0 --window 20
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_money


def old_drive(moto_url, queue_url, window, model_seconds, results) -> None:
    from alphacut.aws import credits as ledger_module
    from alphacut.aws import usage as usage_module
    from alphacut.aws.transactions import CONDITION_FAILED, transact
    from alphacut.errors import InsufficientCredits

    def holds(self, key_id):
        pages = self._db.get_paginator("query").paginate(
            TableName=self.table_name,
            ConsistentRead=True,
            KeyConditionExpression="pk = :pk",
            FilterExpression="attribute_not_exists(settled)",
            ExpressionAttributeValues={":pk": {"S": f"hold#{key_id}"}},
        )
        return [ledger_module._hold(item) for page in pages for item in page.get("Items", [])]

    def release(self, key_id, hold_id, amount=None):
        if amount is None:
            hold = self.hold(key_id, hold_id)
            if hold is None:
                return False
            amount = hold.amount
        items = [
            self._settle(key_id, hold_id, amount, "released"),
            self._credit_item(key_id, amount, "ADD balance :amount"),
        ]
        return transact(self._db, items) is None

    def reserve(self, key_id, hold_id, amount, seconds, route=""):
        moment = int(time.time())
        for hold in holds(self, key_id):  # the old release_expired, on every reservation
            if hold.hold_until < moment:
                release(self, key_id, hold.hold_id, hold.amount)
        items = [
            self.take_item(key_id, amount),
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": {
                        **self._hold_key(key_id, hold_id),
                        "amount": {"N": str(amount)},
                        "hold_until": {"N": str(int(time.time()) + seconds)},
                        "route": {"S": route},
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
        refused = transact(self._db, items)
        if refused is None or refused[1] == CONDITION_FAILED:
            return
        raise InsufficientCredits("not covered", field="credits")

    def start_reservation(self, key_id, hold_id, amount, seconds, route=""):
        reserve(self, key_id, hold_id, amount, seconds, route)  # all of it before the model, as it was
        return None, None

    ledger_module.CreditLedger.reserve = reserve
    ledger_module.CreditLedger.start_reservation = start_reservation
    ledger_module.CreditLedger.release = release
    usage_module.COUNTER_SHARDS = 1
    bench_money.drive(moto_url, queue_url, window, model_seconds, results)


if __name__ == "__main__":
    sys.exit(bench_money.run_day(bench_money.parse(), target=old_drive))
