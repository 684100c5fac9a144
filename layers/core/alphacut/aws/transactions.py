"""DynamoDB transactions that retry what DynamoDB asks to be retried and report what refused.

DynamoDB cancels a transaction that meets another on the same item (a key's busy balance or day
counter) with ``TransactionConflict``; the SDK does not retry it. A condition that failed is an
answer, not an error: the caller learns which item refused.

Usage::

    refused = transact(client("dynamodb"), items)   # None: written; else one code per item
    if refused and refused[0] == CONDITION_FAILED: ...
"""

from __future__ import annotations

import random
import time
from typing import Any

from botocore.exceptions import ClientError

CONDITION_FAILED = "ConditionalCheckFailed"
CONFLICT_ATTEMPTS = 8


def transact(db: Any, items: list[dict[str, Any]], attempts: int = CONFLICT_ATTEMPTS) -> list[str] | None:
    """Write ``items`` as one transaction: None when written; the cancellation codes (one per item,
    "None" for those that did not refuse) when a condition failed. Conflicts are retried with a
    short jittered wait; other errors raise."""
    tried = 0
    while True:
        try:
            db.transact_write_items(TransactItems=items)
            return None
        except ClientError as error:
            codes = [str(r.get("Code")) for r in error.response.get("CancellationReasons") or []]
            if CONDITION_FAILED in codes:
                return codes
            tried += 1
            if "TransactionConflict" not in codes or tried >= attempts:
                raise
            time.sleep(random.uniform(0.005, 0.02) * 2 ** min(tried, 4))
