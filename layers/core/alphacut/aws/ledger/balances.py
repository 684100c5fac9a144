"""The credit ledger's items and the reads and writes its parts share (``alphacut.aws.ledger.credits``
puts the parts together): a credit account's balance item, its top-ups and take-backs, the low-balance
threshold, and the hold items' reads. The reservations (``reservations``), their settlement
(``settlement``) and the scheduled sweep's due work (``sweep``) build on ``Balances``.

This module holds the ledger's clients, clock and nonces (``client``, ``time``, ``uuid``): a test or
the money simulator that replaces them replaces them here.

Usage::

    balances = Balances("usage-table")   # the parts' base; a caller uses CreditLedger
    balances.top_up("key-id", 37_000, reference="invoice-17")
    balances.standing("key-id")          # Standing(balance=37000, low_at=0, armed=False)
"""

from __future__ import annotations

import random
import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from alphacut.aws.clients import client
from alphacut.aws.transactions import CONFLICT_ATTEMPTS, transact
from alphacut.errors import InvalidOption
from alphacut.pricing import credits

BALANCE = "balance"
SETTLED_KEPT_SECONDS = 86400  # a settled hold stays a day (for an operator), then TTL removes it
MAX_TOP_UP = 10_000_000 * 1000  # ten million credits at once: a typo, not a purchase
DUE_INDEX = "open-by-due"  # sparse: only items with ``open_due`` (open holds, balances to check)
DUE_SHARDS = 16  # the index's partitions: a store's holds spread over them, the sweep reads each
ENTRY = "m#"  # a reservation between its writes, on the balance item
# an entry older than this is finished by the sweep (its function may be gone; finishing it
# twice is safe, so this only decides how soon the credits are held properly again)
STALE_SECONDS = 60
REFUND = "r#"  # a release's credit made, its hold not yet marked released, on the balance item
RELEASING = "releasing"  # a hold being given back: no commit can take it any more
# a release half-done this long: its function is certainly gone (Lambda's longest run is 900 s), so
# the sweep may make the credit itself; one sweep at a time (``claimed_until``, past a run's 50 s)
RELEASE_STALE_SECONDS = 960
CLAIM_SECONDS = 120
# entries on one balance at once: each ~90 bytes of an item DynamoDB caps at 400 KB; a debit past
# it is a 429 (retry shortly), never a validation error on every later write of the key
MAX_IN_FLIGHT = 1000
CONDITION_FAILED_ERROR = "ConditionalCheckFailedException"


@dataclass(frozen=True)
class TopUp:
    key_id: str
    reference: str
    amount: int  # millicredits
    at: str  # ISO 8601, UTC
    note: str = ""


@dataclass(frozen=True)
class Standing:
    """A balance and its low-balance threshold, read in one item read (the paid routes' pre-check)."""

    balance: int  # millicredits
    low_at: int = 0  # millicredits; 0: no threshold
    armed: bool = False  # the next crossing below ``low_at`` is news (a top-up arms it again)

    def crossed_by(self, left: int | None) -> bool:
        """Whether a call that left ``left`` has taken the balance below the threshold while armed."""
        return self.armed and left is not None and left < self.low_at


@dataclass(frozen=True)
class TakenBack:
    """Credits taken back from a balance, and what the balance owes after (spent or still held)."""

    taken: int  # millicredits
    owed: int  # millicredits below zero once taken: spent of the credits taken back, or held


@dataclass(frozen=True)
class Hold:
    hold_id: str
    amount: int
    hold_until: int
    route: str = ""


@dataclass(frozen=True)
class Reservation:
    """One reservation's three writes share this: the price, the hold's due time and a nonce
    that tells this reservation's hold from another one of the same id."""

    key_id: str
    hold_id: str
    amount: int
    due: int
    route: str
    nonce: str
    at: int

    @classmethod
    def from_entry(cls, key_id: str, hold_id: str, entry: dict[str, Any]) -> Reservation:
        fields = entry["M"]
        return cls(
            key_id,
            hold_id,
            int(fields["a"]["N"]),
            int(fields["d"]["N"]),
            fields.get("r", {}).get("S", ""),
            fields["n"]["S"],
            int(fields["t"]["N"]),
        )

    def entry(self) -> dict[str, Any]:
        return {
            "M": {
                "a": {"N": str(self.amount)},
                "d": {"N": str(self.due)},
                "r": {"S": self.route},
                "n": {"S": self.nonce},
                "t": {"N": str(self.at)},
            }
        }


@dataclass
class Swept:
    """What one sweep did: holds released, reservations finished, balances looked at, items that
    failed (skipped, left for the next run), and how long past its due time the oldest item was."""

    released: int = 0
    finished: int = 0
    balances: int = 0
    errors: int = 0
    oldest_due_seconds: int = 0


def due_shard(name: str) -> str:
    return f"due#{zlib.crc32(name.encode()) % DUE_SHARDS:02d}"


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def conflict(error: ClientError) -> bool:
    return error_code(error) == "TransactionConflictException"


def condition_failed(error: ClientError) -> bool:
    return error_code(error) == CONDITION_FAILED_ERROR


class Balances:
    def __init__(self, table_name: str, clock: Callable[[], float] = time.time):
        self.table_name, self.clock = table_name, clock

    @property
    def _db(self) -> Any:
        return client("dynamodb")

    def _key(self, key_id: str, sk: str = BALANCE) -> dict[str, Any]:
        return {"pk": {"S": f"credits#{key_id}"}, "sk": {"S": sk}}

    def _hold_key(self, key_id: str, hold_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"hold#{key_id}"}, "sk": {"S": hold_id}}

    def _write(self, operation: str, **request: Any) -> dict[str, Any]:
        """One single-item write; DynamoDB refuses it while a transaction holds the item
        (``TransactionConflictException``, which the SDK does not retry): retried here."""
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                answer: dict[str, Any] = getattr(self._db, operation)(TableName=self.table_name, **request)
                return answer
            except ClientError as error:
                if not conflict(error) or attempt == CONFLICT_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0.002, 0.01) * 2 ** min(attempt, 4))
        raise AssertionError("unreachable")

    def _write_if(self, **request: Any) -> bool:
        """A conditional single-item update: False where its condition failed (an answer, not an
        error: someone did it first), True where it was written."""
        try:
            self._write("update_item", **request)
            return True
        except ClientError as error:
            if not condition_failed(error):
                raise
            return False

    def _nonce(self) -> str:
        """A write's nonce: tells this reservation's or release's entries from another's of the same id."""
        return uuid.uuid4().hex[:16]

    def balance(self, key_id: str) -> int | None:
        """What the key may spend now, in millicredits (held credits are not in it); None: the
        key has no credit account. One item read, whatever the key did before."""
        item = self._db.get_item(
            TableName=self.table_name,
            Key=self._key(key_id),
            ConsistentRead=True,
            ProjectionExpression=BALANCE,
        ).get("Item")
        return int(item[BALANCE]["N"]) if item else None

    def standing(self, key_id: str) -> Standing | None:
        """The balance with its low-balance threshold and arming (None: no credit account): the
        same one item read as ``balance``."""
        item = self._db.get_item(
            TableName=self.table_name,
            Key=self._key(key_id),
            ConsistentRead=True,
            ProjectionExpression="balance, low_at, low_armed",
        ).get("Item")
        if not item:
            return None
        return Standing(
            int(item[BALANCE]["N"]),
            int(item.get("low_at", {}).get("N", "0")),
            bool(item.get("low_armed", {}).get("BOOL", False)),
        )

    def set_low_balance(self, key_id: str, low_at: int) -> None:
        """The threshold below which the key's store is told (0: never). Armed only while the
        balance is at or above it: a balance below it already was told (or is), and writing the
        threshold again must not buy again (a leaked key would re-arm it after every crossing);
        the next credited payment arms it (``rearm_low_balance``)."""
        self._db.update_item(
            TableName=self.table_name,
            Key=self._key(key_id),
            UpdateExpression="SET low_at = :low, low_armed = :off",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":low": {"N": str(low_at)}, ":off": {"BOOL": False}},
        )
        if low_at > 0:  # below it already: armed again by the next credited payment
            self._arm_if(key_id, "low_at = :low AND balance >= :low", {":low": {"N": str(low_at)}})

    def claim_low_balance(self, key_id: str) -> int | None:
        """Disarm the threshold for this crossing: the crossing's number to the one caller that
        disarmed it (however many calls crossed at once), None to every other."""
        try:
            answer = self._db.update_item(
                TableName=self.table_name,
                Key=self._key(key_id),
                UpdateExpression="SET low_armed = :off ADD crossings :one",
                ConditionExpression="low_armed = :on",
                ExpressionAttributeValues={
                    ":on": {"BOOL": True},
                    ":off": {"BOOL": False},
                    ":one": {"N": "1"},
                },
                ReturnValues="UPDATED_NEW",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return None
        return int(answer["Attributes"]["crossings"]["N"])

    def unclaim_low_balance(self, key_id: str, crossing: int) -> bool:
        """Arm the threshold again for crossing ``crossing`` whose news could not be queued, where it
        is still the last claim and nothing armed it since: the next charged call below the
        threshold is told (as a new crossing, so no top-up bought under the old one's name twice).
        False where another claim or a top-up came first."""
        return self._arm_if(
            key_id,
            "low_armed = :off AND crossings = :crossing",
            {":off": {"BOOL": False}, ":crossing": {"N": str(crossing)}},
        )

    def rearm_low_balance(self, key_id: str) -> None:
        """A top-up landed: the next crossing of the threshold is news again (none set: nothing)."""
        self._arm_if(key_id, "low_at > :zero", {":zero": {"N": "0"}})

    def _arm_if(self, key_id: str, condition: str, values: dict[str, Any]) -> bool:
        """Arm the low-balance threshold where ``condition`` holds; False where it does not."""
        try:
            self._db.update_item(
                TableName=self.table_name,
                Key=self._key(key_id),
                UpdateExpression="SET low_armed = :on",
                ConditionExpression=condition,
                ExpressionAttributeValues={":on": {"BOOL": True}, **values},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def take_back(
        self, key_id: str, amount: int, reference: str, note: str = "", also: Sequence[dict[str, Any]] = ()
    ) -> TakenBack | None:
        """Take ``amount`` back (a refunded or disputed payment's credits), once per reference, in
        one transaction with ``also`` (the payment record's own condition): None when the
        reference was used or a condition of ``also`` failed (nothing taken). The balance goes
        below zero by what was spent of those credits, or is held by a call not settled yet: held
        credits that come back pay it first, and so does the next top-up; while it is below zero
        nothing can be reserved. What it owes after is ``max(0, -balance)``."""
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock()))
        items = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": {
                        **self._key(key_id, f"refund#{reference}"),
                        "taken": {"N": str(amount)},
                        "at": {"S": at},
                        "note": {"S": note[:500]},
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            self._credit_item(key_id, amount, "SET balance = balance - :amount ADD taken :amount"),
            *also,
        ]
        if transact(self._db, items):
            return None
        return TakenBack(amount, max(0, -(self.balance(key_id) or 0)))

    def open(self, key_id: str) -> None:
        """A credit account at 0 (a key made on a credit-based plan); an existing one is kept."""
        try:
            self._db.put_item(
                TableName=self.table_name,
                Item=self.account_item(key_id),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            pass

    def account_item(self, key_id: str) -> dict[str, Any]:
        """A new credit account's item, at 0 (a key import writes it in its batches)."""
        return {**self._key(key_id), BALANCE: {"N": "0"}, "added": {"N": "0"}, "inflight": {"N": "0"}}

    def top_up(
        self,
        key_id: str,
        amount: int,
        reference: str = "",
        note: str = "",
        also: Sequence[dict[str, Any]] = (),
    ) -> TopUp:
        """Add ``amount`` millicredits, with its audit item and ``also`` (a payment record's own
        condition), in one transaction; a reference used before, or a condition of ``also`` that
        fails, adds nothing (InvalidOption names the reference)."""
        if not 0 < amount <= MAX_TOP_UP:
            raise InvalidOption(
                f"must be more than 0 and at most {credits(MAX_TOP_UP)} credits",
                field="add",
                limit=credits(MAX_TOP_UP),
            )
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock()))
        reference = reference or self.new_reference()
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
            self._credit_item(key_id, amount, "ADD balance :amount, added :amount"),
            *also,
        ]
        if transact(self._db, items):
            raise InvalidOption(f"top-up {reference!r} was made already", field="reference")
        return TopUp(key_id, reference, amount, at, note)

    def new_reference(self) -> str:
        """A top-up reference for a caller that has none: made (and shown) before the top-up, so
        that a retry of the same top-up with it adds nothing."""
        return f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.clock()))}-{uuid.uuid4().hex[:8]}"

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

    def _credit_item(self, key_id: str, amount: int, expression: str) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": self._key(key_id),
                "UpdateExpression": expression,
                "ExpressionAttributeValues": {":amount": {"N": str(amount)}},
            }
        }

    def _balance_item(self, key_id: str) -> dict[str, Any]:
        """The whole balance item, entries included ({} where there is none): the sweep's read."""
        item: dict[str, Any] = (
            self._db.get_item(TableName=self.table_name, Key=self._key(key_id), ConsistentRead=True).get(
                "Item"
            )
            or {}
        )
        return item

    def _hold_item(self, key_id: str, hold_id: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._db.get_item(
            TableName=self.table_name, Key=self._hold_key(key_id, hold_id), ConsistentRead=True
        ).get("Item")
        return item

    def hold(self, key_id: str, hold_id: str) -> Hold | None:
        """The open hold of this id (None: none, or settled already)."""
        item = self._hold_item(key_id, hold_id)
        return _hold(item) if item and "settled" not in item else None

    def holds(self, key_id: str) -> list[Hold]:
        """The key's open holds, for an operator: this reads the key's whole hold partition
        (settled holds until TTL deletes them), so no call's path uses it."""
        pages = self._db.get_paginator("query").paginate(
            TableName=self.table_name,
            ConsistentRead=True,
            KeyConditionExpression="pk = :pk",
            FilterExpression="attribute_not_exists(settled)",
            ExpressionAttributeValues={":pk": {"S": f"hold#{key_id}"}},
        )
        return [_hold(item) for page in pages for item in page.get("Items", [])]

    def _remove_entry(self, key_id: str, entry: str, nonce: str) -> None:
        self._write_if(
            Key=self._key(key_id),
            UpdateExpression="REMOVE #entry ADD inflight :minus",
            ConditionExpression="#entry.n = :nonce",
            ExpressionAttributeNames={"#entry": entry},
            ExpressionAttributeValues={":nonce": {"S": nonce}, ":minus": {"N": "-1"}},
        )


def _hold(item: dict[str, Any]) -> Hold:
    return Hold(
        item["sk"]["S"],
        int(item["amount"]["N"]),
        int(item["hold_until"]["N"]),
        item.get("route", {}).get("S", ""),
    )
