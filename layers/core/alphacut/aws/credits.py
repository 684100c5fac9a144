"""Prepaid credits (DynamoDB, the usage table): a credit-based key's balance, its top-ups, and
the reservations (holds) that keep the balance from ever going below zero, at a cost per call
that does not grow with the key's history.

A call is paid in two steps. ``reserve`` takes the price from the balance and records a hold;
delivery commits the hold (in the usage meter's charge transaction, ``alphacut.aws.usage``); a
failure releases it (the price given back). A hold whose call was killed outlives it: past
``hold_until`` the scheduled sweep (``sweep``) releases it, off the request path.

The balance is the one item every call of a key writes, so the hot path never puts it in a
transaction (DynamoDB cancels transactions that overlap on an item, and a busy key's calls
always overlap). A reservation is three single-item writes:

1. the balance: ``balance - price`` on condition that it covers the price, and in the same
   write an entry ``m#<hold id>`` (price, due time, a nonce) that says "debited, hold not yet
   written" (the recovery record), and ``inflight + 1``;
2. the hold item, on condition that it does not exist (if another reservation of the same id
   made it, the debit is given back: a hold is reserved once);
3. the entry removed (``inflight - 1``).

A function killed between 1 and 3 leaves the entry: the sweep finds the balance through the
sparse index (``open_due``, set while entries may be in flight) and finishes 2 and 3 itself, which
is safe to repeat (the nonce tells whose hold it is). A release is the same in reverse, also
without a transaction (``release``: the hold marked ``releasing``, the balance credited with an
``r#<hold id>`` entry, the hold marked ``released``, the entry removed). Only top-ups and charges
without a hold (rare) are transactions on the balance.

Items (amounts in millicredits, ``alphacut.pricing``):

- ``pk = "credits#<key id>"``, ``sk = "balance"``: ``balance`` (below zero only by credits taken
  back that were spent or held: what the key owes), ``added`` (all top-ups), ``taken`` (all taken back),
  ``inflight`` and an ``m#<hold id>`` / ``r#<hold id>`` entry per reservation / release between
  its writes; ``open_due`` and ``due_shard`` while the sweep should look at it
- ``pk = "credits#<key id>"``, ``sk = "topup#<reference>"``: ``amount``, ``at``, ``note`` (the
  audit trail; a reference is used once, so a repeated top-up adds nothing)
- ``pk = "credits#<key id>"``, ``sk = "refund#<reference>"``: ``taken``, ``at``, ``note`` (a
  refund's or dispute's credits taken back, once per reference)
- ``pk = "hold#<key id>"``, ``sk = "<call or task id>"``: ``amount``, ``hold_until``, ``route``,
  ``nonce``; open: ``open_due`` (= ``hold_until``) and ``due_shard``, so it is in the index ``DUE_INDEX``;
  once settled ``settled`` (committed | released), ``expires_at``, and no ``open_due`` (out of the
  index: nothing on the request path ever reads a settled hold again; TTL deletes it); while a
  release is under way ``settled = releasing``, ``refund_nonce`` and ``open_due`` (for the sweep)

Usage::

    ledger = CreditLedger("usage-table")
    ledger.top_up("key-id", 37_000, reference="invoice-17")
    ledger.reserve("key-id", "request-id", 1000, seconds=90, route="/v1/cutout")  # or InsufficientCredits
    ledger.release("key-id", "request-id")        # a failure: the credit comes back
    ledger.balance("key-id")                       # 36000 after a commit (None: no credit account)
    ledger.sweep()          # the schedule: expired holds released, stale reservations finished
"""

from __future__ import annotations

import random
import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from alphacut.aws.clients import client
from alphacut.aws.transactions import CONFLICT_ATTEMPTS, transact
from alphacut.errors import InsufficientCredits, InvalidOption, TooManyInFlight
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


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _conflict(error: ClientError) -> bool:
    return _code(error) == "TransactionConflictException"


def _condition_failed(error: ClientError) -> bool:
    return _code(error) == CONDITION_FAILED_ERROR


class CreditLedger:
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
                if not _conflict(error) or attempt == CONFLICT_ATTEMPTS - 1:
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
            if not _condition_failed(error):
                raise
            return False

    # ---- the balance ------------------------------------------------------------------------------
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

    # ---- holds ------------------------------------------------------------------------------------
    def reserve(self, key_id: str, hold_id: str, amount: int, seconds: int, route: str = "") -> int | None:
        """Take ``amount`` from the balance into a hold, or raise InsufficientCredits; a hold of the
        same id made already stays as it is (the call was reserved). Returns the balance the
        reservation left (None where it is not known: reserved already), so a call need not read it."""
        reservation = self._reservation(key_id, hold_id, amount, seconds, route)
        debited, left = self._debit(reservation)
        if debited:
            try:
                self._finish(reservation)
            except (ClientError, BotoCoreError):  # a write that failed (a killed function runs nothing)
                self._give_back(reservation)
                raise
        return left

    def start_reservation(
        self, key_id: str, hold_id: str, amount: int, seconds: int, route: str = ""
    ) -> tuple[int | None, Callable[[], None] | None]:
        """``reserve`` in two parts: the debit now (InsufficientCredits, or the balance left), and
        what finishes it (the hold put, the entry removed: None when there is nothing to do), for
        the caller to run while its model works. Until it has run, the call may not be settled."""
        reservation = self._reservation(key_id, hold_id, amount, seconds, route)
        debited, left = self._debit(reservation)
        return left, (lambda: self._finish(reservation)) if debited else None

    def _reservation(self, key_id: str, hold_id: str, amount: int, seconds: int, route: str) -> Reservation:
        now = int(self.clock())
        return Reservation(key_id, hold_id, amount, now + seconds, route, uuid.uuid4().hex[:16], now)

    def _give_back(self, reservation: Reservation) -> None:
        """A reservation that failed after its debit (the caller gives up: a task not submitted):
        the hold made if it is not, released, and the entry removed, now rather than when the sweep
        finds the entry and the hold falls due (a task's: hours). Where these fail too, the sweep
        still finishes the reservation and releases the hold when due."""
        if not self._put_hold(reservation):
            self._finish(reservation)  # a twin's hold: the debit comes back with the entry
            return
        self.release(reservation.key_id, reservation.hold_id, reservation.amount)
        self._remove_entry(reservation.key_id, f"{ENTRY}{reservation.hold_id}", reservation.nonce)

    def _debit(self, reservation: Reservation) -> tuple[bool, int | None]:
        """Write 1: the price taken with the entry that records it, and the balance left. False:
        this hold was reserved already (or is being reserved now by another call of the same id)."""
        entry = f"{ENTRY}{reservation.hold_id}"
        try:
            answer = self._write(
                "update_item",
                Key=self._key(reservation.key_id),
                UpdateExpression=(
                    "SET balance = balance - :amount, #entry = :entry, "
                    "open_due = if_not_exists(open_due, :check), "
                    "due_shard = if_not_exists(due_shard, :shard) "
                    "ADD inflight :one"
                ),
                ConditionExpression=(
                    "balance >= :amount AND attribute_not_exists(#entry) AND "
                    "(attribute_not_exists(inflight) OR inflight < :cap)"
                ),
                ExpressionAttributeNames={"#entry": entry},
                ExpressionAttributeValues={
                    ":amount": {"N": str(reservation.amount)},
                    ":entry": reservation.entry(),
                    ":check": {"N": str(reservation.at + STALE_SECONDS)},
                    ":shard": {"S": due_shard(reservation.key_id)},
                    ":one": {"N": "1"},
                    ":cap": {"N": str(MAX_IN_FLIGHT)},
                },
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return True, int(answer["Attributes"][BALANCE]["N"])
        except ClientError as error:
            if not _condition_failed(error):
                raise
            before = error.response.get("Item") or {}
        if entry in before:  # ours (an earlier attempt of this write went through) or a twin's
            return bool(before[entry]["M"]["n"]["S"] == reservation.nonce), None
        if before and self._hold_item(reservation.key_id, reservation.hold_id) is not None:
            return False, None
        if int(before.get("inflight", {}).get("N", 0)) >= MAX_IN_FLIGHT:
            raise TooManyInFlight(
                f"{MAX_IN_FLIGHT} of this key's calls are being reserved at once; retry in a second",
                field="credits",
                limit=MAX_IN_FLIGHT,
            )
        left, price = credits(int(before[BALANCE]["N"]) if before else 0), credits(reservation.amount)
        raise InsufficientCredits(
            f"this key's balance is {left} credits and this call costs {price}",
            field="credits",
            limit=credits(reservation.amount),
        )

    def _finish(self, reservation: Reservation) -> None:
        """Writes 2 and 3: the hold item, then the entry removed. Safe to run twice (the owner
        and the sweep): the hold is put once, and a hold made by another reservation of the same
        id gives this debit back instead."""
        give_back = not self._put_hold(reservation)
        update = "SET balance = balance + :amount REMOVE #entry ADD inflight :minus" if give_back else None
        self._write_if(  # failing: the entry stays, the sweep finishes it
            Key=self._key(reservation.key_id),
            UpdateExpression=update or "REMOVE #entry ADD inflight :minus",
            ConditionExpression="#entry.n = :nonce",
            ExpressionAttributeNames={"#entry": f"{ENTRY}{reservation.hold_id}"},
            ExpressionAttributeValues={
                ":nonce": {"S": reservation.nonce},
                ":minus": {"N": "-1"},
                **({":amount": {"N": str(reservation.amount)}} if give_back else {}),
            },
        )

    def _put_hold(self, reservation: Reservation) -> bool:
        """Write 2, the hold item: True where it is this reservation's (put now or before), False
        where another reservation of the same id made it."""
        try:
            self._db.put_item(
                TableName=self.table_name,
                Item={
                    **self._hold_key(reservation.key_id, reservation.hold_id),
                    "amount": {"N": str(reservation.amount)},
                    "hold_until": {"N": str(reservation.due)},
                    "route": {"S": reservation.route},
                    "nonce": {"S": reservation.nonce},
                    "open_due": {"N": str(reservation.due)},
                    "due_shard": {"S": due_shard(reservation.hold_id)},
                },
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return True
        except ClientError as error:
            if not _condition_failed(error):
                raise
            return bool((error.response.get("Item") or {}).get("nonce", {}).get("S") == reservation.nonce)

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

    def release(self, key_id: str, hold_id: str, amount: int | None = None, entry_gone: bool = False) -> bool:
        """Give a hold's credits back (a failed call, a task that ended without a result). False:
        no such hold (committed or released already). Four single-item writes, none of them in a
        transaction: the hold marked ``releasing`` (so no commit can take it meanwhile), the
        balance credited with an ``r#<hold id>`` entry, the hold marked ``released``, the entry
        removed. A function stopped between them leaves what the sweep needs to finish. A releasing
        hold has no TTL: until its credit is made it is the only record that credits are owed.
        ``entry_gone``: the caller knows its reservation's ``m#`` entry is removed (the hold may get
        its TTL at once; else the sweep gives it one once no entry names it)."""
        if amount is None:
            hold = self.hold(key_id, hold_id)
            if hold is None:
                return False
            amount = hold.amount
        nonce = uuid.uuid4().hex[:16]
        now = int(self.clock())
        try:
            self._write(
                "update_item",
                Key=self._hold_key(key_id, hold_id),
                UpdateExpression="SET settled = :releasing, refund_nonce = :nonce, open_due = :later",
                ConditionExpression="amount = :amount AND attribute_not_exists(settled)",
                ExpressionAttributeValues={
                    ":releasing": {"S": RELEASING},
                    ":nonce": {"S": nonce},
                    ":amount": {"N": str(amount)},
                    ":later": {"N": str(now + RELEASE_STALE_SECONDS)},
                },
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise
            # refused, or this very write landed and its retry met it (a timeout): then go on
            landed = self._hold_item(key_id, hold_id) or {}
            if landed.get("refund_nonce", {}).get("S") != nonce:
                return False
        self._refund(key_id, hold_id, amount, nonce, entry_gone=entry_gone)
        return True

    def _refund(
        self,
        key_id: str,
        hold_id: str,
        amount: int,
        nonce: str,
        credit: bool = True,
        entry_gone: bool = False,
    ) -> None:
        """The releasing hold's credits onto the balance (with the entry that says so), the hold
        marked released, the entry removed. ``credit=False``: the balance has the entry already.
        Only the hold's owner (its release) or the sweep that claimed it runs this: one at a time."""
        entry = f"{REFUND}{hold_id}"
        now = int(self.clock())
        if credit:
            try:
                self._write(
                    "update_item",
                    Key=self._key(key_id),
                    UpdateExpression=(
                        "SET balance = balance + :amount, #entry = :entry, "
                        "open_due = if_not_exists(open_due, :check), "
                        "due_shard = if_not_exists(due_shard, :shard) "
                        "ADD inflight :one"
                    ),
                    ConditionExpression="attribute_not_exists(#entry)",
                    ExpressionAttributeNames={"#entry": entry},
                    ExpressionAttributeValues={
                        ":amount": {"N": str(amount)},
                        ":entry": {"M": {"a": {"N": str(amount)}, "n": {"S": nonce}, "t": {"N": str(now)}}},
                        ":check": {"N": str(now + STALE_SECONDS)},
                        ":shard": {"S": due_shard(key_id)},
                        ":one": {"N": "1"},
                    },
                )
            except ClientError as error:
                if not _condition_failed(error):
                    raise  # the sweep credits it (the hold stays releasing, in the index)
        # both refused or failing are left for the sweep, and safe to repeat
        self._write_if(
            Key=self._hold_key(key_id, hold_id),
            UpdateExpression="SET settled = :released, " + self._retirement(entry_gone),
            ConditionExpression="refund_nonce = :nonce AND settled = :releasing",
            ExpressionAttributeValues={
                ":released": {"S": "released"},
                ":releasing": {"S": RELEASING},
                ":nonce": {"S": nonce},
                ":when": {"N": str(self._retire_at(entry_gone))},
            },
        )
        self._remove_entry(key_id, entry, nonce)

    def _retirement(self, entry_gone: bool) -> str:
        """What settling writes besides ``settled``: the TTL where no entry can name the hold any
        more, else a due time for the sweep to check that (``_retire``) and then give the TTL."""
        return "expires_at = :when REMOVE open_due" if entry_gone else "open_due = :when"

    def _retire_at(self, entry_gone: bool) -> int:
        now = int(self.clock())
        return now + SETTLED_KEPT_SECONDS if entry_gone else now + STALE_SECONDS

    # ---- the sweep (scheduled, off the request path) ------------------------------------------------
    def sweep(self, now: float | None = None) -> Swept:
        """Everything the index says is due: open holds past ``hold_until`` released, releases and
        reservations a stopped function left half-done finished, settled holds given their TTL.
        Reads only what is due. An item (or a shard's query) that fails is counted in ``errors``
        and skipped, so one bad item never stops the rest; each run starts at another shard (the
        minute's), so a run that times out does not starve the last shards. Two runs at once are
        safe: the money simulator explores two sweeps with every other actor (docs/architecture.md)."""
        moment = int(self.clock() if now is None else now)
        swept = Swept()
        first = (moment // 60) % DUE_SHARDS
        for shard in [(first + offset) % DUE_SHARDS for offset in range(DUE_SHARDS)]:
            try:
                items = [
                    item
                    for page in self._db.get_paginator("query").paginate(
                        TableName=self.table_name,
                        IndexName=DUE_INDEX,
                        KeyConditionExpression="due_shard = :shard AND open_due <= :now",
                        ExpressionAttributeValues={
                            ":shard": {"S": f"due#{shard:02d}"},
                            ":now": {"N": str(moment)},
                        },
                    )
                    for item in page.get("Items", [])
                ]
            except ClientError:
                swept.errors += 1
                continue
            for item in items:
                swept.oldest_due_seconds = max(swept.oldest_due_seconds, moment - int(item["open_due"]["N"]))
                try:
                    self._sweep_item(item, moment, swept)
                except ClientError:
                    swept.errors += 1
        return swept

    def _sweep_item(self, item: dict[str, Any], moment: int, swept: Swept) -> None:
        kind, _, key_id = item["pk"]["S"].partition("#")
        if kind == "credits":
            swept.balances += 1
            swept.finished += self._check_balance(key_id, moment)
        elif kind == "hold" and "settled" not in item:
            swept.released += self.release(key_id, item["sk"]["S"], int(item["amount"]["N"]))
        elif kind == "hold" and item["settled"]["S"] == RELEASING:
            swept.finished += self._finish_release(key_id, item["sk"]["S"], moment)
        elif kind == "hold":
            swept.finished += self._retire(key_id, item["sk"]["S"])

    def _finish_release(self, key_id: str, hold_id: str, now: int) -> int:
        """A release stopped for ``RELEASE_STALE_SECONDS`` (its function is gone): claimed by one
        sweep at a time, the credit made unless the balance has its entry, then finished."""
        try:
            claimed = self._write(
                "update_item",
                Key=self._hold_key(key_id, hold_id),
                UpdateExpression="SET claimed_until = :until",
                ConditionExpression=(
                    "settled = :releasing AND open_due <= :now "
                    "AND (attribute_not_exists(claimed_until) OR claimed_until < :now)"
                ),
                ExpressionAttributeValues={
                    ":releasing": {"S": RELEASING},
                    ":now": {"N": str(now)},
                    ":until": {"N": str(now + CLAIM_SECONDS)},
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as error:
            if not _condition_failed(error):
                raise
            return 0
        credited = f"{REFUND}{hold_id}" in self._balance_item(key_id)
        self._refund(key_id, hold_id, int(claimed["amount"]["N"]), claimed["refund_nonce"]["S"], not credited)
        return 1

    def _drop_refund_entry(self, key_id: str, hold_id: str, nonce: str) -> bool:
        """The balance side of a release: its ``r#`` entry removed once the hold says released (or
        is gone: TTL only ever deletes a hold after that). A hold still releasing is left to its
        owner or the one sweep that claims it: a second finisher here could see the entry gone
        and credit the release twice."""
        hold = self._hold_item(key_id, hold_id)
        if hold is not None and hold.get("settled", {}).get("S") == RELEASING:
            return False
        self._remove_entry(key_id, f"{REFUND}{hold_id}", nonce)
        return True

    def _remove_entry(self, key_id: str, entry: str, nonce: str) -> None:
        self._write_if(
            Key=self._key(key_id),
            UpdateExpression="REMOVE #entry ADD inflight :minus",
            ConditionExpression="#entry.n = :nonce",
            ExpressionAttributeNames={"#entry": entry},
            ExpressionAttributeValues={":nonce": {"S": nonce}, ":minus": {"N": "-1"}},
        )

    def _retire(self, key_id: str, hold_id: str) -> int:
        """A settled hold whose settler could not tell that no entry names it: the reservation's
        ``m#`` and the release's ``r#`` entries finished if still there, then its TTL. Until then
        it stays: TTL must never delete a hold that an entry still names (the sweep would take the
        entry for a hold never made, and put it back open)."""
        hold = self._hold_item(key_id, hold_id)
        if hold is None or hold.get("settled", {}).get("S") in (None, RELEASING):
            return 0
        balance = self._balance_item(key_id)
        reserved = balance.get(f"{ENTRY}{hold_id}")
        if reserved is not None and reserved["M"]["n"]["S"] == hold["nonce"]["S"]:
            self._finish(Reservation.from_entry(key_id, hold_id, reserved))
        refund = balance.get(f"{REFUND}{hold_id}")
        if refund is not None and refund["M"]["n"]["S"] == hold.get("refund_nonce", {}).get("S"):
            self._remove_entry(key_id, f"{REFUND}{hold_id}", refund["M"]["n"]["S"])
        self._write_if(
            Key=self._hold_key(key_id, hold_id),
            UpdateExpression="SET expires_at = :expires REMOVE open_due",
            ConditionExpression="settled = :settled",
            ExpressionAttributeValues={
                ":settled": hold["settled"],
                ":expires": {"N": str(int(self.clock()) + SETTLED_KEPT_SECONDS)},
            },
        )
        return 1

    def _check_balance(self, key_id: str, now: int) -> int:
        """Finish the balance's entries older than ``STALE_SECONDS`` (reservations: the hold put;
        refunds: the hold marked released), take it out of the index when none is in flight, else
        look again later. How many were finished. Each step is safe to repeat at once."""
        item = self._balance_item(key_id)
        if not item:
            return 0
        finished = 0
        for name, value in item.items():
            if not name.startswith((ENTRY, REFUND)) or int(value["M"]["t"]["N"]) > now - STALE_SECONDS:
                continue
            hold_id = name[len(ENTRY) :]
            if name.startswith(ENTRY):
                self._finish(Reservation.from_entry(key_id, hold_id, value))
            elif not self._drop_refund_entry(key_id, hold_id, value["M"]["n"]["S"]):
                continue  # still releasing: its owner, or later the one sweep that claims it, ends it
            finished += 1
        try:
            self._write(
                "update_item",
                Key=self._key(key_id),
                UpdateExpression="REMOVE open_due",
                ConditionExpression="inflight = :zero",
                ExpressionAttributeValues={":zero": {"N": "0"}},
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise
            self._write(
                "update_item",
                Key=self._key(key_id),
                UpdateExpression="SET open_due = :later",
                ExpressionAttributeValues={":later": {"N": str(now + STALE_SECONDS)}},
            )
        return finished

    # ---- parts of the usage meter's charge transaction ---------------------------------------------
    def commit_item(self, key_id: str, hold_id: str, amount: int, entry_gone: bool = False) -> dict[str, Any]:
        """The hold settled on delivery (its credits were taken at the reservation); the condition
        fails when it was released meanwhile (then ``take_item`` charges the balance instead).
        ``entry_gone``: the reservation's last write is known done, so the TTL may be set now."""
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": self._hold_key(key_id, hold_id),
                "UpdateExpression": "SET settled = :how, " + self._retirement(entry_gone),
                "ConditionExpression": "amount = :amount AND attribute_not_exists(settled)",
                "ExpressionAttributeValues": {
                    ":amount": {"N": str(amount)},
                    ":how": {"S": "committed"},
                    ":when": {"N": str(self._retire_at(entry_gone))},
                },
            }
        }

    def _credit_item(self, key_id: str, amount: int, expression: str) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": self._key(key_id),
                "UpdateExpression": expression,
                "ExpressionAttributeValues": {":amount": {"N": str(amount)}},
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
