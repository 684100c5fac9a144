"""Card payments as the store sees them, and each store's billing profile (DynamoDB, the usage
table): what billing writes beside the ledger, never on an image call's path.

Items:

- ``pk = "billing#<key id>"``, ``sk = "profile"``: ``customer`` (Stripe's), ``card`` (a saved
  PaymentMethod), ``email``, ``auto_pack`` (the pack an automatic top-up buys), ``notify_url``
  (where the low-balance webhook goes)
- ``pk = "billing#<key id>"``, ``sk = "pay#<PaymentIntent id>"``: ``credits``, ``amount``,
  ``currency``, ``state`` (created | succeeded | failed | refunded | disputed), ``at``, ``reason``
  (purchase | auto), ``receipt_url``, ``failure``, ``refunded_credits``, ``owed_credits``
- ``pk = "payment#<PaymentIntent id>"``, ``sk = "key"``: ``key_id`` (a dispute or refund names only
  the payment)

Usage::

    records = PaymentRecords("usage-table")
    records.created("k123", intent_id, credits=40, amount=800, currency="usd")
    records.mark("k123", intent_id, "succeeded", receipt_url="https://...")
    records.payments("k123")            # newest first
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from alphacut.aws.clients import client

PROFILE = "profile"
STATES = ("created", "succeeded", "failed", "refunded", "disputed")
PAYMENTS_SHOWN = 100


@dataclass(frozen=True)
class Payment:
    payment_id: str
    credits: int
    amount: int  # minor units of ``currency``
    currency: str
    state: str
    at: str
    reason: str = "purchase"
    receipt_url: str = ""
    failure: str = ""
    refunded_credits: int = 0
    owed_credits: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "payment": self.payment_id,
            "credits": self.credits,
            "amount": self.amount,
            "currency": self.currency,
            "state": self.state,
            "at": self.at,
            "reason": self.reason,
            "receipt_url": self.receipt_url or None,
            "failure": self.failure or None,
            "refunded_credits": self.refunded_credits,
            "owed_credits": self.owed_credits,
        }


@dataclass(frozen=True)
class Profile:
    key_id: str
    customer: str = ""
    card: str = ""
    email: str = ""
    auto_pack: str = ""
    notify_url: str = ""


def _text(item: dict[str, Any], name: str) -> str:
    return str(item.get(name, {}).get("S", ""))


def _number(item: dict[str, Any], name: str) -> int:
    return int(item.get(name, {}).get("N", "0"))


class PaymentRecords:
    def __init__(self, table_name: str, clock: Any = time.time):
        self.table_name = table_name
        self.clock = clock

    @property
    def _db(self) -> Any:
        return client("dynamodb")

    def _now(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock()))

    # ---- payments -----------------------------------------------------------------------------------
    def created(
        self, key_id: str, payment_id: str, credits: int, amount: int, currency: str, reason: str = "purchase"
    ) -> None:
        """A PaymentIntent made for the key (kept as it was if the webhook came first)."""
        self._db.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": {"pk": {"S": f"billing#{key_id}"}, "sk": {"S": f"pay#{payment_id}"}},
                        "UpdateExpression": "SET credits = :credits, amount = :amount, currency = :currency, "
                        "reason = :reason, #at = if_not_exists(#at, :at), "
                        "#state = if_not_exists(#state, :created)",
                        "ExpressionAttributeNames": {"#at": "at", "#state": "state"},
                        "ExpressionAttributeValues": {
                            ":credits": {"N": str(credits)},
                            ":amount": {"N": str(amount)},
                            ":currency": {"S": currency},
                            ":reason": {"S": reason},
                            ":at": {"S": self._now()},
                            ":created": {"S": "created"},
                        },
                    }
                },
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": {
                            "pk": {"S": f"payment#{payment_id}"},
                            "sk": {"S": "key"},
                            "key_id": {"S": key_id},
                        },
                    }
                },
            ]
        )

    def mark(self, key_id: str, payment_id: str, state: str, **details: str | int) -> None:
        """The payment's new state, with what came with it (receipt_url, failure, refunded_credits,
        owed_credits). A payment refunded or disputed is never marked succeeded again by a late event."""
        names = {"#state": "state", "#at": "at"}
        values: dict[str, Any] = {
            ":state": {"S": state},
            ":at": {"S": self._now()},
            ":final": {"S": "refunded"},
        }
        sets = ["#state = :state", "#at = if_not_exists(#at, :at)"]
        for name, value in details.items():
            sets.append(f"{name} = :{name}")
            values[f":{name}"] = {"N": str(value)} if isinstance(value, int) else {"S": str(value)}
        condition = "attribute_not_exists(#state) OR #state <> :final" if state == "succeeded" else None
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"pk": {"S": f"billing#{key_id}"}, "sk": {"S": f"pay#{payment_id}"}},
            "UpdateExpression": "SET " + ", ".join(sets),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if condition:
            request["ConditionExpression"] = condition
        else:
            del values[":final"]
        try:
            self._db.update_item(**request)
        except self._db.exceptions.ConditionalCheckFailedException:
            pass

    def key_of(self, payment_id: str) -> str:
        """The key a payment was made for ("" when this service made no such payment)."""
        item = self._db.get_item(
            TableName=self.table_name, Key={"pk": {"S": f"payment#{payment_id}"}, "sk": {"S": "key"}}
        ).get("Item")
        return _text(item, "key_id") if item else ""

    def payment(self, key_id: str, payment_id: str) -> Payment | None:
        item = self._db.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"billing#{key_id}"}, "sk": {"S": f"pay#{payment_id}"}},
            ConsistentRead=True,
        ).get("Item")
        return _payment(item) if item else None

    def payments(self, key_id: str, first_day: str = "", last_day: str = "~") -> list[Payment]:
        """The key's payments between two UTC days (both included), newest first, at most 100 a page
        of one query (a store buys a few times a month; the statement pages by month)."""
        items = self._db.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :pay)",
            ExpressionAttributeValues={":pk": {"S": f"billing#{key_id}"}, ":pay": {"S": "pay#"}},
            ConsistentRead=True,
        ).get("Items", [])
        found = [p for p in map(_payment, items) if first_day <= p.at[:10] <= last_day]
        return sorted(found, key=lambda p: p.at, reverse=True)[:PAYMENTS_SHOWN]

    # ---- the profile --------------------------------------------------------------------------------
    def profile(self, key_id: str) -> Profile:
        item = (
            self._db.get_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"billing#{key_id}"}, "sk": {"S": PROFILE}},
                ConsistentRead=True,
            ).get("Item")
            or {}
        )
        return Profile(
            key_id,
            _text(item, "customer"),
            _text(item, "card"),
            _text(item, "email"),
            _text(item, "auto_pack"),
            _text(item, "notify_url"),
        )

    def save_profile(self, key_id: str, **fields: str) -> None:
        """Set profile fields (an empty string removes one)."""
        sets = {name: value for name, value in fields.items() if value}
        removed = [name for name, value in fields.items() if not value]
        parts = []
        if sets:
            parts.append("SET " + ", ".join(f"{name} = :{name}" for name in sets))
        if removed:
            parts.append("REMOVE " + ", ".join(removed))
        if not parts:
            return
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"pk": {"S": f"billing#{key_id}"}, "sk": {"S": PROFILE}},
            "UpdateExpression": " ".join(parts),
        }
        if sets:
            request["ExpressionAttributeValues"] = {f":{name}": {"S": value} for name, value in sets.items()}
        self._db.update_item(**request)


def _payment(item: dict[str, Any]) -> Payment:
    return Payment(
        _text(item, "sk").removeprefix("pay#"),
        _number(item, "credits"),
        _number(item, "amount"),
        _text(item, "currency"),
        _text(item, "state"),
        _text(item, "at"),
        _text(item, "reason") or "purchase",
        _text(item, "receipt_url"),
        _text(item, "failure"),
        _number(item, "refunded_credits"),
        _number(item, "owed_credits"),
    )
