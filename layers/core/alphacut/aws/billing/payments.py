"""Card payments as the store sees them, and each store's billing profile (DynamoDB, the usage
table): what billing writes beside the ledger, never on an image call's path.

Items:

- ``pk = "billing#<key id>"``, ``sk = "profile"``: ``customer`` (Stripe's), ``card`` (a saved
  PaymentMethod), ``email``, ``auto_pack`` (the pack an automatic top-up buys), ``notify_url``
  (where the low-balance webhook goes), ``email_pending`` (an address not confirmed yet:
  ``alphacut.billing.notices``), ``auto_cap`` (automatic top-ups a month) with
  ``auto_cap_before`` and ``auto_cap_month`` (a raise applies from the next month)
- ``pk = "billing#<key id>"``, ``sk = "pay#<PaymentIntent id>"``, the service's own record of a
  payment it made, written as it is made: ``credits``, ``amount``, ``currency``,
  ``reason`` (purchase | auto), ``state`` and its ``rank`` (``STATE_RANK``: a state only moves
  forward), ``at``, ``receipt_url``, ``failure``; and the money it moved, each changed only in the
  ledger's transaction that moves it (``counter_item``): ``credited`` (millicredits added),
  ``refund_taken`` and ``dispute_taken`` (millicredits taken back), ``owed_credits`` (what the
  balance owed after the last take-back)
- ``pk = "billing#<key id>"``, ``sk = "intents#<UTC hour>" | "auto#<UTC month>"``: ``count``,
  ``expires_at``: the PaymentIntents and SetupIntents the key asked for in an hour, and the
  automatic top-ups of a month (``count``)
- ``pk = "billing#<key id>"``, ``sk = "auto#<UTC month>#crossing#<n>"``: a crossing's automatic
  top-up counted (``expires_at``), the PaymentIntent it made (``payment``) and what its first attempt
  sent to Stripe (``attempt_pack``, ``attempt_credits``, ``attempt_amount``, ``attempt_currency``,
  ``attempt_card``, ``attempt_customer``: ``TopUpAttempt``), so a retry sends exactly that under the
  same idempotency key (Stripe refuses a key reused with other parameters)
- ``pk = "payment#<PaymentIntent id>"``, ``sk = "key"``: ``key_id`` (a refund or dispute names only
  the payment; a payment with no such item is not the service's)

Usage::

    records = PaymentRecords("usage-table")
    records.created("k123", intent_id, credits=40, amount=800, currency="usd")
    payment = records.find(intent_id)                 # None: not a payment of this service
    records.advance(payment, "succeeded", receipt_url="https://...")   # False: never backwards
    records.payments("k123")            # newest first
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from alphacut.aws.clients import client
from alphacut.aws.transactions import CONDITION_FAILED, once_marker, transact

PROFILE = "profile"
# a payment's states in the order they may follow each other: a state is replaced only by one of
# a higher rank (docs/api.md, "Payments"), so repeated and reordered events never move it back
STATE_RANK = {"created": 0, "failed": 1, "succeeded": 2, "refunded": 3, "disputed": 4, "won": 5, "lost": 5}
COUNTERS = ("credited", "refund_taken", "dispute_taken")
PAYMENTS_SHOWN = 100
COUNTED_KEPT_SECONDS = 40 * 86400  # a window's count and its names, kept past their month


@dataclass(frozen=True)
class Payment:
    key_id: str
    payment_id: str
    credits: int
    amount: int  # minor units of ``currency``
    currency: str
    state: str
    at: str
    reason: str = "purchase"
    receipt_url: str = ""
    failure: str = ""
    credited: int = 0  # millicredits
    refund_taken: int = 0  # millicredits
    dispute_taken: int = 0  # millicredits
    owed_credits: int = 0
    asked_by: str = ""  # the key that asked for the PaymentIntent ("": the account's, or not recorded)

    def to_dict(self) -> dict[str, Any]:
        return {
            "payment": self.payment_id,
            "credits": self.credits,
            "amount": self.amount,
            "currency": self.currency,
            "state": self.state,
            "at": self.at,
            "reason": self.reason,
            "asked_by": self.asked_by or None,
            "receipt_url": self.receipt_url or None,
            "failure": self.failure or None,
            "refunded_credits": self.refund_taken // 1000,
            "disputed_credits": self.dispute_taken // 1000,
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
    auto_cap: int | None = None  # automatic top-ups a calendar month (None: the operator's default)
    auto_cap_before: int | None = None  # the cap before the last change, in ``auto_cap_month``
    auto_cap_month: str = ""  # the month of the last change (YYYY-MM)
    email_pending: str = ""  # an address set for notices, its confirmation link mailed, not yet followed

    def cap_in(self, month: str, default: int) -> int:
        """The automatic top-ups allowed in ``month``: a cap raised this month applies from the
        next (a key that raises it buys no more this month), a lowered one at once."""
        cap = default if self.auto_cap is None else self.auto_cap
        if self.auto_cap_month == month:
            before = default if self.auto_cap_before is None else self.auto_cap_before
            return min(cap, before)
        return cap


@dataclass(frozen=True)
class TopUpAttempt:
    """What an automatic top-up sends to Stripe, as its first attempt sent it."""

    pack: str
    credits: int
    amount: int  # minor units of ``currency``
    currency: str
    card: str  # the saved PaymentMethod
    customer: str

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> TopUpAttempt | None:
        if "attempt_credits" not in item:
            return None  # none recorded (a crossing counted before attempts were)
        return cls(
            _text(item, "attempt_pack"),
            _number(item, "attempt_credits"),
            _number(item, "attempt_amount"),
            _text(item, "attempt_currency"),
            _text(item, "attempt_card"),
            _text(item, "attempt_customer"),
        )


@dataclass(frozen=True)
class Counted:
    """A name counted in a window (a crossing's top-up): its PaymentIntent ("": none noted yet),
    the seconds since it was counted, and its first attempt (None: not recorded)."""

    payment: str = ""
    age: float = 0.0
    attempt: TopUpAttempt | None = None


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

    def _payment_key(self, key_id: str, payment_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"billing#{key_id}"}, "sk": {"S": f"pay#{payment_id}"}}

    # ---- payments -----------------------------------------------------------------------------------
    def created(
        self,
        key_id: str,
        payment_id: str,
        credits: int,
        amount: int,
        currency: str,
        reason: str = "purchase",
        asked_by: str = "",
    ) -> None:
        """The service's record of a PaymentIntent it made for the key (the account): the one source
        of what a payment of it is worth; ``asked_by``: the key of the account that asked for it."""
        self._db.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": {
                            **self._payment_key(key_id, payment_id),
                            "credits": {"N": str(credits)},
                            "amount": {"N": str(amount)},
                            "currency": {"S": currency},
                            "reason": {"S": reason},
                            "at": {"S": self._now()},
                            "state": {"S": "created"},
                            "rank": {"N": "0"},
                            **({"asked_by": {"S": asked_by}} if asked_by else {}),
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
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
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )

    def recorded(
        self, key_id: str, payment_id: str, credits: int, amount: int, currency: str, reason: str = "purchase"
    ) -> None:
        """``created``, where the same payment may have been recorded already (a message delivered
        twice makes the same PaymentIntent under its idempotency key)."""
        try:
            self.created(key_id, payment_id, credits, amount, currency, reason)
        except self._db.exceptions.TransactionCanceledException:
            if self.key_of(payment_id) != key_id:
                raise

    def record_failed(
        self,
        key_id: str,
        payment_id: str,
        credits: int,
        amount: int,
        currency: str,
        failure: str,
        reason: str = "purchase",
    ) -> None:
        """A PaymentIntent made for the key whose card was declined as it was made: recorded, failed."""
        self.recorded(key_id, payment_id, credits, amount, currency, reason)
        payment = self.payment(key_id, payment_id)
        if payment is not None:
            self.advance(payment, "failed", failure=failure[:500] or "declined")

    def find(self, payment_id: str) -> Payment | None:
        """The service's own record of a payment (None: the service made no such payment)."""
        key_id = self.key_of(payment_id)
        return self.payment(key_id, payment_id) if key_id else None

    def advance(self, payment: Payment, state: str, **details: str | int) -> bool:
        """Move the payment to ``state`` with what came with it (receipt_url, failure,
        owed_credits), only forward (``STATE_RANK``): False when it is there or past it already."""
        names = {"#state": "state", "#rank": "rank"}
        values: dict[str, Any] = {":state": {"S": state}, ":rank": {"N": str(STATE_RANK[state])}}
        sets = ["#state = :state", "#rank = :rank"]
        for name, value in details.items():
            sets.append(f"{name} = :{name}")
            values[f":{name}"] = {"N": str(value)} if isinstance(value, int) else {"S": str(value)}
        try:
            self._db.update_item(
                TableName=self.table_name,
                Key=self._payment_key(payment.key_id, payment.payment_id),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="attribute_not_exists(#rank) OR #rank < :rank",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def note(self, payment: Payment, **details: str | int) -> None:
        """Details of a payment that change no state (what a balance owes after a take-back)."""
        self._db.update_item(
            TableName=self.table_name,
            Key=self._payment_key(payment.key_id, payment.payment_id),
            UpdateExpression="SET " + ", ".join(f"{name} = :{name}" for name in details),
            ExpressionAttributeValues={
                f":{name}": {"N": str(value)} if isinstance(value, int) else {"S": str(value)}
                for name, value in details.items()
            },
        )

    def counter_item(
        self, payment: Payment, counter: str, was: int, becomes: int, others: dict[str, int] | None = None
    ) -> dict[str, Any]:
        """A transaction item moving one of the payment's money counters (``COUNTERS``) from
        ``was`` to ``becomes``, on condition that it still says ``was`` (and each of ``others`` what
        it said when read: a refund and a dispute of one payment never both take the same credits):
        the ledger writes it in the transaction that moves the credits, so the record and the
        balance never disagree and a repeated or reordered event moves nothing twice."""
        if counter not in COUNTERS:
            raise ValueError(f"not a payment counter: {counter}")
        checks = {counter: was, **(others or {})}
        conditions, values = [], {":becomes": {"N": str(becomes)}}
        for index, (name, value) in enumerate(checks.items()):
            if name not in COUNTERS:
                raise ValueError(f"not a payment counter: {name}")
            values[f":v{index}"] = {"N": str(value)}
            check = f"{name} = :v{index}"
            conditions.append(f"(attribute_not_exists({name}) OR {check})" if value == 0 else check)
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": self._payment_key(payment.key_id, payment.payment_id),
                "UpdateExpression": f"SET {counter} = :becomes",
                "ConditionExpression": " AND ".join(conditions),
                "ExpressionAttributeValues": values,
            }
        }

    def key_of(self, payment_id: str) -> str:
        """The key a payment was made for ("" when this service made no such payment)."""
        item = self._db.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"payment#{payment_id}"}, "sk": {"S": "key"}},
            ConsistentRead=True,
        ).get("Item")
        return _text(item, "key_id") if item else ""

    def payment(self, key_id: str, payment_id: str) -> Payment | None:
        item = self._db.get_item(
            TableName=self.table_name, Key=self._payment_key(key_id, payment_id), ConsistentRead=True
        ).get("Item")
        return _payment(key_id, item) if item else None

    def payments(self, key_id: str, first_day: str = "", last_day: str = "~") -> list[Payment]:
        """The key's payments between two UTC days (both included), newest first, at most 100 a page
        of one query (a store buys a few times a month; the statement pages by month)."""
        items = self._db.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :pay)",
            ExpressionAttributeValues={":pk": {"S": f"billing#{key_id}"}, ":pay": {"S": "pay#"}},
            ConsistentRead=True,
        ).get("Items", [])
        found = [p for p in (_payment(key_id, item) for item in items) if first_day <= p.at[:10] <= last_day]
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
            _number(item, "auto_cap") if "auto_cap" in item else None,
            _number(item, "auto_cap_before") if "auto_cap_before" in item else None,
            _text(item, "auto_cap_month"),
            _text(item, "email_pending"),
        )

    def count(self, key_id: str, window: str, limit: int, once_for: str = "") -> bool:
        """One more of the key's ``window`` (``intents#<hour>``, ``auto#<month>``) if fewer than
        ``limit`` were counted: one conditional write; False when the window is full. ``once_for``:
        a name counted once in the window (a crossing whose message came twice: True again)."""
        if limit <= 0:  # a window of none: nothing is counted in it (a fresh window too)
            return False
        expires = {"N": str(int(self.clock()) + COUNTED_KEPT_SECONDS)}
        update = {
            "TableName": self.table_name,
            "Key": {"pk": {"S": f"billing#{key_id}"}, "sk": {"S": window}},
            "UpdateExpression": "ADD #count :one SET expires_at = :expires",
            "ConditionExpression": "attribute_not_exists(#count) OR #count < :limit",
            "ExpressionAttributeNames": {"#count": "count"},
            "ExpressionAttributeValues": {
                ":one": {"N": "1"},
                ":limit": {"N": str(limit)},
                ":expires": expires,
            },
        }
        if once_for:
            marker = once_marker(self.table_name, f"billing#{key_id}", f"{window}#{once_for}", expires)
            refused = transact(self._db, [marker, {"Update": update}])
            return refused is None or refused[0] == CONDITION_FAILED  # counted now, or before
        try:
            self._db.update_item(**update)
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def first_time(self, key_id: str, name: str) -> bool:
        """True the first time ``name`` is claimed for the key (a crossing told), False after."""
        try:
            self._db.put_item(
                TableName=self.table_name,
                Item={
                    "pk": {"S": f"billing#{key_id}"},
                    "sk": {"S": name},
                    "expires_at": {"N": str(int(self.clock()) + 40 * 86400)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def claimed(self, key_id: str, name: str) -> bool:
        """Whether ``name`` was claimed for the key (``first_time``), read."""
        return self._billing_item(key_id, name) is not None

    def counted(self, key_id: str, window: str) -> int:
        """How many the key's ``window`` counted (``count``), read."""
        item = self._billing_item(key_id, window)
        return _number(item, "count") if item else 0

    def _billing_item(self, key_id: str, name: str) -> dict[str, Any] | None:
        """The key's ``billing#`` item ``name``, read consistently (None: none)."""
        item: dict[str, Any] | None = self._db.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"billing#{key_id}"}, "sk": {"S": name}},
            ConsistentRead=True,
        ).get("Item")
        return item

    def counted_for(self, key_id: str, window: str, once_for: str) -> Counted:
        """What a counted name noted: its PaymentIntent, age and first attempt (``Counted()``: not
        counted)."""
        item = self._db.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"billing#{key_id}"}, "sk": {"S": f"{window}#{once_for}"}},
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return Counted()
        counted_at = int(item["expires_at"]["N"]) - COUNTED_KEPT_SECONDS
        age = max(0.0, self.clock() - counted_at)
        return Counted(_text(item, "payment"), age, TopUpAttempt.from_item(item))

    def noted_attempt(self, key_id: str, window: str, once_for: str, attempt: TopUpAttempt) -> TopUpAttempt:
        """The first attempt of a counted name (a crossing's top-up): ``attempt`` when none was
        noted, else the one noted first (each field written only where absent, in one write, so two
        deliveries at once agree); the name must be counted already."""
        fields = {
            "attempt_pack": {"S": attempt.pack},
            "attempt_credits": {"N": str(attempt.credits)},
            "attempt_amount": {"N": str(attempt.amount)},
            "attempt_currency": {"S": attempt.currency},
            "attempt_card": {"S": attempt.card},
            "attempt_customer": {"S": attempt.customer},
        }
        answer = self._db.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"billing#{key_id}"}, "sk": {"S": f"{window}#{once_for}"}},
            UpdateExpression="SET " + ", ".join(f"{n} = if_not_exists({n}, :{n})" for n in fields),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={f":{name}": value for name, value in fields.items()},
            ReturnValues="ALL_NEW",
        )
        return TopUpAttempt.from_item(answer["Attributes"]) or attempt

    def note_counted(self, key_id: str, window: str, once_for: str, payment_id: str) -> None:
        """The PaymentIntent a counted name (a crossing) made: a message delivered again buys nothing."""
        self._db.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"billing#{key_id}"}, "sk": {"S": f"{window}#{once_for}"}},
            UpdateExpression="SET payment = :payment",
            ExpressionAttributeValues={":payment": {"S": payment_id}},
        )

    def save_profile(self, key_id: str, **fields: str | int) -> None:
        """Set profile fields (an empty string removes one; numbers are kept as numbers)."""
        sets = {name: value for name, value in fields.items() if value != ""}
        removed = [name for name, value in fields.items() if value == ""]
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
            request["ExpressionAttributeValues"] = {
                f":{name}": {"N": str(value)} if isinstance(value, int) else {"S": value}
                for name, value in sets.items()
            }
        self._db.update_item(**request)


def _payment(key_id: str, item: dict[str, Any]) -> Payment:
    return Payment(
        key_id,
        _text(item, "sk").removeprefix("pay#"),
        _number(item, "credits"),
        _number(item, "amount"),
        _text(item, "currency"),
        _text(item, "state"),
        _text(item, "at"),
        _text(item, "reason") or "purchase",
        _text(item, "receipt_url"),
        _text(item, "failure"),
        _number(item, "credited"),
        _number(item, "refund_taken"),
        _number(item, "dispute_taken"),
        _number(item, "owed_credits"),
        _text(item, "asked_by"),
    )
