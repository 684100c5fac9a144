"""Reserving a call's price: the debit with its recovery entry, the hold item, the entry removed
(three single-item writes, ``alphacut.aws.ledger.credits`` tells the protocol). A reservation that
fails after its debit is given back through a release (``settlement``).

Usage::

    ledger = CreditLedger("usage-table")          # Reservations is one of its parts
    ledger.reserve("key-id", "request-id", 1000, seconds=90, route="/v1/cutout")  # or InsufficientCredits
    left, finish = ledger.start_reservation("key-id", "request-id", 1000, seconds=90)
    finish and finish()                           # while the model runs
"""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from alphacut.aws.ledger.balances import (
    BALANCE,
    ENTRY,
    MAX_IN_FLIGHT,
    STALE_SECONDS,
    Reservation,
    condition_failed,
    due_shard,
)
from alphacut.aws.ledger.settlement import Settlement
from alphacut.errors import InsufficientCredits, TooManyInFlight
from alphacut.pricing import credits


class Reservations(Settlement):
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
        return Reservation(key_id, hold_id, amount, now + seconds, route, self._nonce(), now)

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
            if not condition_failed(error):
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
            if not condition_failed(error):
                raise
            return bool((error.response.get("Item") or {}).get("nonce", {}).get("S") == reservation.nonce)
