"""The ledger's due work, for the scheduled sweep (off every call's path): open holds past
``hold_until`` released, reservations and releases a stopped function left half-done finished,
settled holds given their TTL once no entry names them. It reads only what the sparse index
``DUE_INDEX`` says is due, a shard at a time.

Usage::

    ledger = CreditLedger("usage-table")    # LedgerSweep is one of its parts
    ledger.sweep()                          # Swept(released=2, finished=0, balances=1, errors=0, ...)
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from alphacut.aws.ledger import balances
from alphacut.aws.ledger.balances import (
    CLAIM_SECONDS,
    DUE_INDEX,
    ENTRY,
    REFUND,
    RELEASING,
    SETTLED_KEPT_SECONDS,
    STALE_SECONDS,
    Reservation,
    Swept,
    condition_failed,
)
from alphacut.aws.ledger.reservations import Reservations


class LedgerSweep(Reservations):
    def sweep(self, now: float | None = None) -> Swept:
        """Everything the index says is due: open holds past ``hold_until`` released, releases and
        reservations a stopped function left half-done finished, settled holds given their TTL.
        Reads only what is due. An item (or a shard's query) that fails is counted in ``errors``
        and skipped, so one bad item never stops the rest; each run starts at another shard (the
        minute's), so a run that times out does not starve the last shards. Two runs at once are
        safe: the money simulator explores two sweeps with every other actor (docs/architecture.md)."""
        moment = int(self.clock() if now is None else now)
        swept = Swept()
        first = (moment // 60) % balances.DUE_SHARDS
        for shard in [(first + offset) % balances.DUE_SHARDS for offset in range(balances.DUE_SHARDS)]:
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
            if not condition_failed(error):
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
            if not condition_failed(error):
                raise
            self._write(
                "update_item",
                Key=self._key(key_id),
                UpdateExpression="SET open_due = :later",
                ExpressionAttributeValues={":later": {"N": str(now + STALE_SECONDS)}},
            )
        return finished
