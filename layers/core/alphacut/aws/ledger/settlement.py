"""Settling a hold: ``release`` gives its credits back (a failed call, a task that ended without a
result) in four single-item writes that the sweep can finish; delivery commits it inside the usage
meter's charge transaction (``commit_item``), or charges the balance without a hold (``take_item``).

Usage::

    ledger = CreditLedger("usage-table")          # Settlement is one of its parts
    ledger.release("key-id", "request-id")        # False: committed or released already
    items = [ledger.commit_item("key-id", "request-id", 1000, entry_gone=True), ...]  # one transaction
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from alphacut.aws.ledger.balances import (
    REFUND,
    RELEASE_STALE_SECONDS,
    RELEASING,
    SETTLED_KEPT_SECONDS,
    STALE_SECONDS,
    Balances,
    condition_failed,
    due_shard,
)


class Settlement(Balances):
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
        nonce = self._nonce()
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
            if not condition_failed(error):
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
                if not condition_failed(error):
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
