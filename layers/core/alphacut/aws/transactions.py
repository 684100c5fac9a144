"""DynamoDB transactions that retry what DynamoDB asks to be retried and report what refused.

DynamoDB cancels a transaction that meets another on the same item with ``TransactionConflict``;
the SDK does not retry it. A condition that failed is an answer, not an error: the caller learns
which item refused. ``items`` may be a function that builds them: it is called again for each
attempt, so a transaction that writes one of several interchangeable items (a counter's shards)
moves to another at once after a conflict.

Usage::

    refused = transact(client("dynamodb"), items)   # None: written; else one code per item
    if refused and refused[0] == CONDITION_FAILED: ...
    transact(client("dynamodb"), lambda: [marker, counter_update(random_shard())])
    transact(db, [once_marker(table, "billing#k1", "2026-11#crossing-7", expires), {"Update": count}])
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

CONDITION_FAILED = "ConditionalCheckFailed"
CONFLICT_ATTEMPTS = 8


Items = list[dict[str, Any]]


def once_marker(table: str, pk: str, sk: str, expires: dict[str, str]) -> dict[str, Any]:
    """A transaction's put of a marker item that refuses to be written twice: what it guards (a
    count beside it) happens once for its name, however often the caller comes back."""
    return {
        "Put": {
            "TableName": table,
            "Item": {"pk": {"S": pk}, "sk": {"S": sk}, "expires_at": expires},
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def transact(
    db: Any, items: Items | Callable[[], Items], attempts: int = CONFLICT_ATTEMPTS
) -> list[str] | None:
    """Write ``items`` as one transaction: None when written; the cancellation codes (one per item,
    "None" for those that did not refuse) when a condition failed. Conflicts are retried (with a
    short jittered wait, none the first time when ``items`` builds new ones); other errors raise."""
    tried = 0
    while True:
        try:
            db.transact_write_items(TransactItems=items() if callable(items) else items)
            return None
        except ClientError as error:
            codes = [str(r.get("Code")) for r in error.response.get("CancellationReasons") or []]
            if CONDITION_FAILED in codes:
                return codes
            tried += 1
            if "TransactionConflict" not in codes or tried >= attempts:
                raise
            if tried > 1 or not callable(items):
                time.sleep(random.uniform(0.005, 0.02) * 2 ** min(tried, 4))
