"""Prepaid credits (DynamoDB, the usage table): a credit-based key's balance, its top-ups, and
the reservations (holds) that keep the balance from ever going below zero.

A call is paid in two steps. ``reserve`` takes the price from the balance and writes a hold in
one transaction whose condition is that the balance covers it: with any number of calls at
once, at most the balance is ever reserved. Delivery commits the hold (deleted in the same
transaction as the usage counters, ``alphacut.aws.usage``); a failure releases it (deleted, the
price given back). A hold whose call was killed outlives it: past ``hold_until`` it is released
at the key's next reservation or balance read. A hold is settled by marking it (``settled``:
committed or released, in the same transaction), never by deleting it: so no function needs to
delete billing items, and a hold is settled once. An open hold has no ``expires_at`` (DynamoDB's
TTL would delete it without giving the credits back); a settled one gets it, and TTL clears it.

Items (amounts in millicredits, ``alphacut.pricing``):

- ``pk = "credits#<key id>"``, ``sk = "balance"``: ``balance``, ``added`` (all top-ups)
- ``pk = "credits#<key id>"``, ``sk = "topup#<reference>"``: ``amount``, ``at``, ``note`` (the
  audit trail; a reference is used once, so a repeated top-up adds nothing)
- ``pk = "hold#<key id>"``, ``sk = "<call or task id>"``: ``amount``, ``hold_until``, ``route``;
  once settled ``settled`` (committed | released) and ``expires_at``

Usage::

    ledger = CreditLedger("usage-table")
    ledger.top_up("key-id", 37_000, reference="invoice-17")
    ledger.reserve("key-id", "request-id", 1000, seconds=90, route="/v1/cutout")  # or InsufficientCredits
    ledger.release("key-id", "request-id")        # a failure: the credit comes back
    ledger.balance("key-id")                       # 36000 after a commit (None: no credit account)
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from alphacut.aws.clients import client
from alphacut.aws.transactions import CONDITION_FAILED, transact
from alphacut.errors import InsufficientCredits, InvalidOption
from alphacut.pricing import credits

BALANCE = "balance"
SETTLED_KEPT_SECONDS = 86400  # a settled hold stays a day (for an operator), then TTL removes it
MAX_TOP_UP = 10_000_000 * 1000  # ten million credits at once: a typo, not a purchase


@dataclass(frozen=True)
class TopUp:
    key_id: str
    reference: str
    amount: int  # millicredits
    at: str  # ISO 8601, UTC
    note: str = ""


@dataclass(frozen=True)
class Hold:
    hold_id: str
    amount: int
    hold_until: int
    route: str = ""


class CreditLedger:
    def __init__(self, table_name: str):
        self.table_name = table_name

    @property
    def _db(self) -> Any:
        return client("dynamodb")

    def _key(self, key_id: str, sk: str = BALANCE) -> dict[str, Any]:
        return {"pk": {"S": f"credits#{key_id}"}, "sk": {"S": sk}}

    def _hold_key(self, key_id: str, hold_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"hold#{key_id}"}, "sk": {"S": hold_id}}

    # ---- the balance ------------------------------------------------------------------------------
    def balance(self, key_id: str, settle_expired: bool = True) -> int | None:
        """What the key may spend now, in millicredits (held credits are not in it); None: the
        key has no credit account. Expired holds are given back first."""
        if settle_expired:
            self.release_expired(key_id)
        item = self._db.get_item(TableName=self.table_name, Key=self._key(key_id), ConsistentRead=True).get(
            "Item"
        )
        return int(item[BALANCE]["N"]) if item else None

    def open(self, key_id: str) -> None:
        """A credit account at 0 (a key made on a credit-based plan); an existing one is kept."""
        try:
            self._db.put_item(
                TableName=self.table_name,
                Item={**self._key(key_id), BALANCE: {"N": "0"}, "added": {"N": "0"}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            pass

    def top_up(self, key_id: str, amount: int, reference: str = "", note: str = "") -> TopUp:
        """Add ``amount`` millicredits, with its audit item, in one transaction; a reference used
        before adds nothing (InvalidOption names it)."""
        if not 0 < amount <= MAX_TOP_UP:
            raise InvalidOption(
                f"must be more than 0 and at most {credits(MAX_TOP_UP)} credits",
                field="add",
                limit=credits(MAX_TOP_UP),
            )
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        reference = reference or f"{at}-{uuid.uuid4().hex[:8]}"
        items = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": {
                        **self._key(key_id, f"topup#{reference}"),
                        "amount": {"N": str(amount)},
                        "at": {"S": at},
                        "note": {"S": note[:500]},
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": self._key(key_id),
                    "UpdateExpression": "ADD balance :amount, added :amount",
                    "ExpressionAttributeValues": {":amount": {"N": str(amount)}},
                }
            },
        ]
        if transact(self._db, items):
            raise InvalidOption(f"top-up {reference!r} was made already", field="reference")
        return TopUp(key_id, reference, amount, at, note)

    def top_ups(self, key_id: str, first_day: str = "", last_day: str = "~") -> list[TopUp]:
        """The key's top-ups made between two UTC days (both included), oldest first."""
        pages = self._db.get_paginator("query").paginate(
            TableName=self.table_name,
            ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :topup)",
            ExpressionAttributeValues={":pk": {"S": f"credits#{key_id}"}, ":topup": {"S": "topup#"}},
        )
        found = [
            TopUp(
                key_id,
                item["sk"]["S"].removeprefix("topup#"),
                int(item["amount"]["N"]),
                item["at"]["S"],
                item.get("note", {}).get("S", ""),
            )
            for page in pages
            for item in page.get("Items", [])
        ]
        return sorted((t for t in found if first_day <= t.at[:10] <= last_day), key=lambda t: t.at)

    # ---- holds ------------------------------------------------------------------------------------
    def reserve(self, key_id: str, hold_id: str, amount: int, seconds: int, route: str = "") -> None:
        """Take ``amount`` from the balance into a hold, or raise InsufficientCredits; a hold of the
        same id made already stays as it is (the call was reserved)."""
        self.release_expired(key_id)
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
        left = self.balance(key_id, settle_expired=False) or 0
        raise InsufficientCredits(
            f"this key's balance is {credits(left)} credits and this call costs {credits(amount)}",
            field="credits",
            limit=credits(amount),
        )

    def hold(self, key_id: str, hold_id: str) -> Hold | None:
        """The open hold of this id (None: none, or settled already)."""
        item = self._db.get_item(
            TableName=self.table_name, Key=self._hold_key(key_id, hold_id), ConsistentRead=True
        ).get("Item")
        return _hold(item) if item and "settled" not in item else None

    def holds(self, key_id: str) -> list[Hold]:
        """The key's open holds."""
        pages = self._db.get_paginator("query").paginate(
            TableName=self.table_name,
            ConsistentRead=True,
            KeyConditionExpression="pk = :pk",
            FilterExpression="attribute_not_exists(settled)",
            ExpressionAttributeValues={":pk": {"S": f"hold#{key_id}"}},
        )
        return [_hold(item) for page in pages for item in page.get("Items", [])]

    def release(self, key_id: str, hold_id: str, amount: int | None = None) -> bool:
        """Give a hold's credits back (a failed call, a task that ended without a result). False:
        no such hold (committed or released already)."""
        if amount is None:
            hold = self.hold(key_id, hold_id)
            if hold is None:
                return False
            amount = hold.amount
        items = [
            self._settle(key_id, hold_id, amount, "released"),
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": self._key(key_id),
                    "UpdateExpression": "ADD balance :amount",
                    "ExpressionAttributeValues": {":amount": {"N": str(amount)}},
                }
            },
        ]
        return transact(self._db, items) is None

    def release_expired(self, key_id: str, now: float | None = None) -> int:
        """Release every hold of the key past its ``hold_until`` (a call killed mid-way); how many."""
        moment = int(time.time() if now is None else now)
        return sum(
            self.release(key_id, hold.hold_id, hold.amount)
            for hold in self.holds(key_id)
            if hold.hold_until < moment
        )

    # ---- parts of the usage meter's charge transaction ---------------------------------------------
    def commit_item(self, key_id: str, hold_id: str, amount: int) -> dict[str, Any]:
        """The hold settled on delivery (its credits were taken at the reservation); the condition
        fails when it was released meanwhile (then ``take_item`` charges the balance instead)."""
        return self._settle(key_id, hold_id, amount, "committed")

    def _settle(self, key_id: str, hold_id: str, amount: int, how: str) -> dict[str, Any]:
        """The hold marked settled, only if it is open and of this amount."""
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": self._hold_key(key_id, hold_id),
                "UpdateExpression": "SET settled = :how, expires_at = :expires",
                "ConditionExpression": "amount = :amount AND attribute_not_exists(settled)",
                "ExpressionAttributeValues": {
                    ":amount": {"N": str(amount)},
                    ":how": {"S": how},
                    ":expires": {"N": str(int(time.time()) + SETTLED_KEPT_SECONDS)},
                },
            }
        }

    def take_item(self, key_id: str, amount: int) -> dict[str, Any]:
        """The balance charged directly (no hold): only if it covers the amount."""
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": self._key(key_id),
                "UpdateExpression": "SET balance = balance - :amount",
                "ConditionExpression": "balance >= :amount",
                "ExpressionAttributeValues": {":amount": {"N": str(amount)}},
            }
        }


def _hold(item: dict[str, Any]) -> Hold:
    return Hold(
        item["sk"]["S"],
        int(item["amount"]["N"]),
        int(item["hold_until"]["N"]),
        item.get("route", {}).get("S", ""),
    )
