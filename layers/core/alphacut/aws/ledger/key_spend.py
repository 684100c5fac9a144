"""What each key spent today, and its own daily limit of credits: a store gives a plugin's key 50
credits a day from the account's one balance, and past them that key's paid calls are refused while
the account's other keys go on.

One conditional write per paid call, beside the ledger's reservation (``alphacut.api.credits``):
``ADD spent :price`` on ``pk = "spend#<key id>"``, ``sk = "<UTC day>"``, on condition that the
key's limit still covers it (no condition for a key without a limit: the write only counts). The
ADD is not idempotent, so the SDK never sends it twice (``clients.unretried``): a write whose
answer was lost (a timeout, a 500) may have landed, and a retry would count it again; it is sent
again only after a refusal that says it was not applied (throughput, throttling), and otherwise
the call fails with its price maybe counted: less spent than the limit allows, never more. (A
one-item transaction with the SDK's ClientRequestToken counts once too, but a key's calls at once
meet in its one item and DynamoDB cancels transactions that overlap: 78 of 200 spends of one key
from 40 threads failed so.) Made before the balance is debited, so whatever arrives at once, at
most the limit is reserved; a call that delivers nothing gives its price back (``give_back``). A
function killed between the two keeps its price spent for the rest of the day: a key can spend less
than its limit, never more.

Usage::

    spend = KeySpend("usage-table")
    day, spent = spend.spend("k0123456789ab", 1000, limit=50_000)   # KeyBudgetSpent past the limit
    spend.give_back("k0123456789ab", day, 1000)             # the call delivered nothing
    spend.today(["k0123456789ab", "k0123456789ac"])          # {key id: millicredits spent today}
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from alphacut.aws.clients import batch_get, client, unretried, write_once
from alphacut.aws.ledger.limits import QUOTA_ITEM_SECONDS, next_utc_midnight, utc_day
from alphacut.errors import KeyBudgetSpent
from alphacut.pricing import credits

logger = Logger(child=True)

# a task's record keeps what its submission counted on its key's spending (its day, millicredits)
SPENT_DAY, SPENT = "spent_day", "spent"


class KeySpend:
    def __init__(self, table_name: str, clock: Callable[[], float] = time.time):
        self.table_name, self.clock = table_name, clock

    @property
    def _db(self) -> Any:
        return client("dynamodb")

    @property
    def _db_once(self) -> Any:
        return unretried("dynamodb")

    def spend(self, key_id: str, amount: int, limit: int | None, at: float | None = None) -> tuple[str, int]:
        """Count ``amount`` millicredits spent by the key today, within ``limit`` (None: no limit of
        its own): the UTC day counted on and the day's spending with it, or ``KeyBudgetSpent``."""
        now = self.clock() if at is None else at
        db = self._db_once
        try:
            answer = write_once(db.update_item, **self.spend_request(key_id, amount, limit, now))
        except db.exceptions.ConditionalCheckFailedException:
            raise self._spent(limit or 0, now) from None
        return utc_day(now), int(answer["Attributes"]["spent"]["N"])

    def spend_request(self, key_id: str, amount: int, limit: int | None, now: float) -> dict[str, Any]:
        """The conditional ADD that counts a spend (``KeyBudgetSpent`` for an amount over the limit)."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": _key(key_id, utc_day(now)),
            "UpdateExpression": "ADD spent :amount SET expires_at = :expires",
            "ExpressionAttributeValues": {
                ":amount": {"N": str(amount)},
                ":expires": {"N": str(int(now) + QUOTA_ITEM_SECONDS)},
            },
            "ReturnValues": "UPDATED_NEW",
        }
        if limit is not None:
            request["ConditionExpression"] = "attribute_not_exists(spent) OR spent <= :room"
            request["ExpressionAttributeValues"][":room"] = {"N": str(limit - amount)}
            if amount > limit:
                raise self._spent(limit, now)
        return request

    def _spent(self, limit: int, now: float) -> KeyBudgetSpent:
        reset = next_utc_midnight(now)
        return KeyBudgetSpent(
            f"this key's daily limit of {credits(limit)} credits is spent (the account's other keys "
            "go on); it resets at 00:00 UTC",
            limit=credits(limit),
            retry_after=reset - int(now),
        )

    def give_back(self, key_id: str, day: str, amount: int) -> None:
        """A call that delivered nothing: its price is not spent. Never sent twice: a give-back whose
        answer was lost may not have landed, and the price then stays spent (less, never more)."""
        db = self._db_once
        try:
            write_once(
                db.update_item,
                TableName=self.table_name,
                Key=_key(key_id, day),
                UpdateExpression="ADD spent :minus",
                ConditionExpression="spent >= :amount",
                ExpressionAttributeValues={":minus": {"N": str(-amount)}, ":amount": {"N": str(amount)}},
            )
        except db.exceptions.ConditionalCheckFailedException:
            pass
        except ClientError as error:  # it may have landed: not sent again
            logger.warning("a key's spending not given back", extra={"key_id": key_id, "error": str(error)})

    def today(self, key_ids: Iterable[str]) -> dict[str, int]:
        """Millicredits each key spent today (reserved for calls still running included)."""
        day, ids = utc_day(self.clock()), list(dict.fromkeys(key_ids))
        spent = dict.fromkeys(ids, 0)
        for item in batch_get(self._db, self.table_name, [_key(k, day) for k in ids]):
            spent[item["pk"]["S"].removeprefix("spend#")] = int(item["spent"]["N"])
        return spent


def _key(key_id: str, day: str) -> dict[str, Any]:
    return {"pk": {"S": f"spend#{key_id}"}, "sk": {"S": day}}
