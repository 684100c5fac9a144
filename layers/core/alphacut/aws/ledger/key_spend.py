"""What each key spent today, and its own daily limit of credits: a store gives a plugin's key 50
credits a day from the account's one balance, and past them that key's paid calls are refused while
the account's other keys go on.

One conditional write per paid call, beside the ledger's reservation (``alphacut.api.credits``):
``ADD spent :price`` on ``pk = "spend#<key id>"``, ``sk = "<UTC day>"``, on condition that the
key's limit still covers it (no condition for a key without a limit: the write only counts). The
write is a one-item transaction: the SDK gives each a ``ClientRequestToken`` and sends it again on
its retries, so a write that landed and then erred (a lost answer, a timeout) is retried without
counting twice, which a plain ``UpdateItem``'s ADD would. A key with a limit reads its day back
(one consistent read) for the answer's figure of what is left. Made
before the balance is debited, so whatever arrives at once, at most the limit is reserved; a call
that delivers nothing gives its price back (``give_back``). A function killed between the two keeps
its price spent for the rest of the day: a key can spend less than its limit, never more.

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

from alphacut.aws.clients import batch_get, client
from alphacut.aws.ledger.limits import QUOTA_ITEM_SECONDS, next_utc_midnight, utc_day
from alphacut.aws.transactions import transact
from alphacut.errors import KeyBudgetSpent
from alphacut.pricing import credits

# a task's record keeps what its submission counted on its key's spending (its day, millicredits)
SPENT_DAY, SPENT = "spent_day", "spent"


class KeySpend:
    def __init__(self, table_name: str, clock: Callable[[], float] = time.time):
        self.table_name, self.clock = table_name, clock

    @property
    def _db(self) -> Any:
        return client("dynamodb")

    def spend(
        self, key_id: str, amount: int, limit: int | None, at: float | None = None
    ) -> tuple[str, int | None]:
        """Count ``amount`` millicredits spent by the key today, within ``limit`` (None: no limit of
        its own): the UTC day counted on and, for a key with a limit, the day's spending with it
        (None without one), or ``KeyBudgetSpent``."""
        now = self.clock() if at is None else at
        update: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": _key(key_id, utc_day(now)),
            "UpdateExpression": "ADD spent :amount SET expires_at = :expires",
            "ExpressionAttributeValues": {
                ":amount": {"N": str(amount)},
                ":expires": {"N": str(int(now) + QUOTA_ITEM_SECONDS)},
            },
        }
        if limit is not None:
            update["ConditionExpression"] = "attribute_not_exists(spent) OR spent <= :room"
            update["ExpressionAttributeValues"][":room"] = {"N": str(limit - amount)}
            if amount > limit:
                raise self._spent(limit, now)
        if transact(self._db, [{"Update": update}]):
            raise self._spent(limit or 0, now)
        return utc_day(now), None if limit is None else self._spent_on(key_id, utc_day(now))

    def _spent_on(self, key_id: str, day: str) -> int:
        """The day's spending as written (a transaction answers no values: one consistent read)."""
        item = self._db.get_item(TableName=self.table_name, Key=_key(key_id, day), ConsistentRead=True)
        return int(item.get("Item", {}).get("spent", {}).get("N", 0))

    def _spent(self, limit: int, now: float) -> KeyBudgetSpent:
        reset = next_utc_midnight(now)
        return KeyBudgetSpent(
            f"this key's daily limit of {credits(limit)} credits is spent (the account's other keys "
            "go on); it resets at 00:00 UTC",
            limit=credits(limit),
            retry_after=reset - int(now),
        )

    def give_back(self, key_id: str, day: str, amount: int) -> None:
        """A call that delivered nothing: its price is not spent (once, however the SDK retries)."""
        transact(
            self._db,
            [
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": _key(key_id, day),
                        "UpdateExpression": "ADD spent :minus",
                        "ConditionExpression": "spent >= :amount",
                        "ExpressionAttributeValues": {
                            ":minus": {"N": str(-amount)},
                            ":amount": {"N": str(amount)},
                        },
                    }
                }
            ],
        )

    def today(self, key_ids: Iterable[str]) -> dict[str, int]:
        """Millicredits each key spent today (reserved for calls still running included)."""
        day, ids = utc_day(self.clock()), list(dict.fromkeys(key_ids))
        spent = dict.fromkeys(ids, 0)
        for item in batch_get(self._db, self.table_name, [_key(k, day) for k in ids]):
            spent[item["pk"]["S"].removeprefix("spend#")] = int(item["spent"]["N"])
        return spent


def _key(key_id: str, day: str) -> dict[str, Any]:
    return {"pk": {"S": f"spend#{key_id}"}, "sk": {"S": day}}
