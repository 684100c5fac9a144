"""Bugs put back on purpose, each one the simulator must find (tests/unit/test_money_simulator.py):
the two interleavings that lost or created credits before they were fixed, mutations of the
protocol (a condition dropped, two writes swapped, a TTL set too early), and issue 90's ten money
bugs, written against the production code by someone who had not written the simulator
(``ISSUE_90``). ``PLANTED`` maps
each name to the scope that finds it and to what plants it; ``planted(names)`` applies them for
the length of one run, as code changes (a method of the ledger swapped) or as a rewrite of a
write the code sends (``alphacut_dev.moneysim.dynamodb.REWRITERS``).

Usage::

    with planted(frozenset({"two-sweeps-credit-twice"})):
        ...   # the ledger as it was before the fix
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from alphacut_dev.moneysim import dynamodb

Undo = Callable[[], None]


@contextmanager
def planted(names: frozenset[str]) -> Iterator[None]:
    plants = {**{name: plant for name, (_, plant) in PLANTED.items()}, **ISSUE_90}
    undo = [plants[name]() for name in sorted(names)]
    try:
        yield
    finally:
        for step in reversed(undo):
            step()


def _swap(name: str, value: Any) -> Undo:
    from alphacut.aws.ledger.credits import CreditLedger

    # the method is one of the ledger's parts' (reservations, settlement, sweep): set on the ledger
    # itself it shadows that for the run, and deleting it brings the part's back
    saved = CreditLedger.__dict__.get(name)
    setattr(CreditLedger, name, value)
    if saved is None:
        return lambda: delattr(CreditLedger, name)
    return lambda: setattr(CreditLedger, name, saved)


def _swap_on(owner: Any, name: str, value: Any) -> Undo:
    """``owner.name`` replaced for the run (a class's method or a module's function)."""
    saved = owner.__dict__.get(name)
    setattr(owner, name, value)
    if saved is None:
        return lambda: delattr(owner, name)
    return lambda: setattr(owner, name, saved)


def _rewrite(rewrite: Callable[[str, dict[str, Any]], dict[str, Any]]) -> Undo:
    dynamodb.REWRITERS.append(rewrite)
    return lambda: dynamodb.REWRITERS.remove(rewrite)


def _replace_in(
    kind: str, marker: str, field: str, old: str, new: str
) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """A write whose ``marker`` text shows in its update expression gets ``old`` -> ``new`` in ``field``."""

    def rewrite(written: str, request: dict[str, Any]) -> dict[str, Any]:
        if (
            written == kind
            and marker in request.get("UpdateExpression", "")
            and old in request.get(field, "")
        ):
            request = {**request, field: request[field].replace(old, new)}
        return request

    return rewrite


def two_sweeps_credit_twice() -> Undo:
    """Before the fix: the balance side finished a release whose hold was still releasing (marked
    it released, removed the entry) while the hold side's claimant was between its claim and its
    read of the balance: the claimant credited again."""

    def drop_refund_entry(self: Any, key_id: str, hold_id: str, nonce: str) -> bool:
        self._refund(key_id, hold_id, 0, nonce, credit=False)
        return True

    return _swap("_drop_refund_entry", drop_refund_entry)


def ttl_on_releasing_hold() -> Undo:
    """Before the fix: a release's first write gave the hold its TTL before the credit existed."""

    def rewrite(kind: str, request: dict[str, Any]) -> dict[str, Any]:
        if kind == "Update" and "settled = :releasing" in request.get("UpdateExpression", ""):
            values = dict(request["ExpressionAttributeValues"])
            values[":expires"] = {"N": str(int(values[":later"]["N"]) - 960 + 86400)}
            request = {**request, "UpdateExpression": request["UpdateExpression"] + ", expires_at = :expires"}
            request["ExpressionAttributeValues"] = values
        return request

    return _rewrite(rewrite)


def ttl_while_entry_names_hold() -> Undo:
    """A settled hold given its TTL though its reservation's entry may still be on the balance (as
    every commit did before the fix): TTL deletes it, the sweep takes the entry for a hold never
    made, puts it back open and gives it back once more."""
    undo = [
        _swap("_retirement", lambda self, entry_gone: "expires_at = :when REMOVE open_due"),
        _swap("_retire_at", lambda self, entry_gone: int(self.clock()) + 86400),
    ]

    def undo_both() -> None:
        for step in reversed(undo):
            step()

    return undo_both


def debit_without_cover() -> Undo:
    """The debit's condition that the balance covers the price, dropped."""
    return _rewrite(
        _replace_in(
            "Update", "balance = balance - :amount", "ConditionExpression", "balance >= :amount AND ", ""
        )
    )


def key_limit_unchecked() -> Undo:
    """A key's daily count added to without its condition that the limit covers the price."""
    return _rewrite(
        _replace_in("Update", "ADD spent :amount", "ConditionExpression", "spent <= :room", ":room = :room")
    )


def refund_credit_unconditional() -> Undo:
    """The release's credit without its condition that the entry is not there yet: a retried
    write credits twice."""
    return _rewrite(
        _replace_in(
            "Update",
            "balance = balance + :amount, #entry",
            "ConditionExpression",
            "attribute_not_exists(#entry)",
            "attribute_exists(pk)",
        )
    )


def commit_of_a_settled_hold() -> Undo:
    """The commit without its condition that the hold is still open: a hold released meanwhile is
    charged too."""
    return _rewrite(
        _replace_in(
            "Update", "settled = :how", "ConditionExpression", " AND attribute_not_exists(settled)", ""
        )
    )


def entry_removed_before_hold() -> Undo:
    """The reservation's last two writes swapped: the entry removed, then the hold put; stopped
    between, the debit is recorded nowhere."""
    from alphacut.aws.ledger.credits import ENTRY, CreditLedger

    original = CreditLedger._finish

    def finish(self: Any, reservation: Any) -> None:
        self._remove_entry(reservation.key_id, f"{ENTRY}{reservation.hold_id}", reservation.nonce)
        original(self, reservation)

    return _swap("_finish", finish)


def metadata_trusted() -> Undo:
    """The webhook crediting what the PaymentIntent's metadata says (the key and credits a stranger
    wrote) instead of the service's own record of the payment."""
    from dataclasses import replace

    from alphacut.billing.stripe_events import StripeEvents

    saved = StripeEvents.__dict__["_ours"]

    def ours(self: Any, obj: dict[str, Any], field: str = "id") -> Any:
        payment = saved(self, obj, field)
        credits = int((obj.get("metadata") or {}).get("credits") or 0)
        return replace(payment, credits=credits) if payment is not None and credits else payment

    StripeEvents._ours = ours
    return lambda: setattr(StripeEvents, "_ours", saved)


def payment_state_regresses() -> Undo:
    """A payment's state written whatever it was: a success that comes after a dispute makes it
    ``succeeded`` again."""
    return _rewrite(
        _replace_in(
            "Update",
            "#rank = :rank",
            "ConditionExpression",
            "attribute_not_exists(#rank) OR #rank < :rank",
            "attribute_exists(pk)",
        )
    )


def crossing_claimed_twice() -> Undo:
    """The low-balance claim without its condition that the threshold is armed: two calls that cross
    at once both claim it, and the store's card is charged twice."""

    def rewrite(kind: str, request: dict[str, Any]) -> dict[str, Any]:
        if kind == "Update" and "SET low_armed = :off" in request.get("UpdateExpression", ""):
            values = {k: v for k, v in request["ExpressionAttributeValues"].items() if k != ":on"}
            request = {
                **request,
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": values,
            }
        return request

    return _rewrite(rewrite)


# name -> (the scope that finds it, what plants it)
PLANTED: dict[str, tuple[str, Callable[[], Undo]]] = {
    "two-sweeps-credit-twice": ("two-sweeps", two_sweeps_credit_twice),
    "ttl-on-releasing-hold": ("release-faults", ttl_on_releasing_hold),
    "ttl-while-entry-names-hold": ("commit-after-faults", ttl_while_entry_names_hold),
    "debit-without-cover": ("two-calls", debit_without_cover),
    "refund-credit-unconditional": ("release-faults", refund_credit_unconditional),
    "commit-of-a-settled-hold": ("call-faults", commit_of_a_settled_hold),
    "entry-removed-before-hold": ("two-calls", entry_removed_before_hold),
    "metadata-trusted": ("payments", metadata_trusted),
    "payment-state-regresses": ("payment-order", payment_state_regresses),
    "crossing-claimed-twice": ("crossings", crossing_claimed_twice),
    "key-limit-unchecked": ("key-limit", key_limit_unchecked),
}


# ---- issue 90: ten money bugs written against the production code, not against the simulator ----
def payment_state_read_then_written() -> Undo:
    """A backwards state under concurrent events: ``advance`` reads the record's rank and writes the
    new state unconditionally where the read was lower; two events between the read and the write
    (a success read ``created``, a dispute written meanwhile) put the payment back to succeeded."""
    from alphacut.aws.billing.payments import STATE_RANK, PaymentRecords

    def advance(self: Any, payment: Any, state: str, **details: Any) -> bool:
        now = self.payment(payment.key_id, payment.payment_id)
        if now is not None and STATE_RANK.get(now.state, -1) >= STATE_RANK[state]:
            return False
        values: dict[str, Any] = {":state": {"S": state}, ":rank": {"N": str(STATE_RANK[state])}}
        sets = ["#state = :state", "#rank = :rank"]
        for name, value in details.items():
            sets.append(f"{name} = :{name}")
            values[f":{name}"] = {"N": str(value)} if isinstance(value, int) else {"S": str(value)}
        self._db.update_item(
            TableName=self.table_name,
            Key=self._payment_key(payment.key_id, payment.payment_id),
            UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeNames={"#state": "state", "#rank": "rank"},
            ExpressionAttributeValues=values,
        )
        return True

    return _swap_on(PaymentRecords, "advance", advance)


def unrecorded_payment_from_metadata() -> Undo:
    """A PaymentIntent the service has no record of, credited from its metadata (the key and the
    credits its creator wrote): "the record may not be written yet"."""
    from alphacut.aws.billing.payments import Payment
    from alphacut.billing.stripe_events import StripeEvents

    saved = StripeEvents.__dict__["_ours"]

    def ours(self: Any, obj: dict[str, Any], field: str = "id") -> Any:
        payment = saved(self, obj, field)
        metadata = obj.get("metadata") or {}
        if payment is None and metadata.get("key_id") and metadata.get("credits"):
            payment_id = str(obj.get(field))
            credits, amount = int(metadata["credits"]), int(obj.get("amount") or 0)
            currency = str(obj.get("currency") or "usd")
            return Payment(str(metadata["key_id"]), payment_id, credits, amount, currency, "created", "")
        return payment

    return _swap_on(StripeEvents, "_ours", ours)


def take_back_clamped() -> Undo:
    """A refund's or dispute's take-back clamped to the balance ("never below zero"): what was spent
    of the credits taken back is forgiven, while the payment's record says all was taken."""
    from alphacut.aws.ledger.balances import Balances, TakenBack
    from alphacut.aws.ledger.credits import CreditLedger

    original = Balances.take_back

    def take_back(self: Any, key_id: str, amount: int, reference: str, note: str = "", also: Any = ()) -> Any:
        amount = min(amount, max(0, self.balance(key_id) or 0))
        if not amount:
            return TakenBack(0, 0)
        return original(self, key_id, amount, reference, note, also)

    return _swap_on(CreditLedger, "take_back", take_back)


def monthly_cap_off_by_one() -> Undo:
    """The automatic top-ups' monthly window counted while its count is at most the cap, not below it."""
    return _rewrite(
        _replace_in("Update", "ADD #count :one", "ConditionExpression", "#count < :limit", "#count <= :limit")
    )


def take_back_rearms() -> Undo:
    """A take-back arms the low-balance threshold again (as any top-up does): a refunded or disputed
    payment makes the next crossing buy again."""
    from alphacut.aws.ledger.balances import Balances
    from alphacut.aws.ledger.credits import CreditLedger

    original = Balances.take_back

    def take_back(self: Any, key_id: str, amount: int, reference: str, note: str = "", also: Any = ()) -> Any:
        done = original(self, key_id, amount, reference, note, also)
        if done is not None:
            self.rearm_low_balance(key_id)
        return done

    return _swap_on(CreditLedger, "take_back", take_back)


def key_spend_never_given_back() -> Undo:
    """The gate's note of the day a call's price was counted on never made: a call that delivers
    nothing releases its hold, and its key's spending of the day keeps the price."""
    from contextlib import contextmanager as making

    from alphacut.api.credits import CreditGate

    @making
    def spent(self: Any, amount: int, task: bool = False) -> Iterator[None]:
        if self.spending is None:
            yield
            return
        day = self.spending.spend_now(amount)
        try:
            yield
        except BaseException:
            self.spending.give_back(day, amount)
            raise
        if task:
            self.spending.task_day = day

    return _swap_on(CreditGate, "_spent", spent)


def key_spend_given_back_today() -> Undo:
    """A call's price given back on the day it ends, not on the day it was counted on: a call across
    00:00 UTC gives yesterday's price back from today's count."""
    from alphacut.api.credits import KeySpending
    from alphacut.aws.ledger.limits import utc_day

    def give_back(self: Any, day: str, amount: int) -> None:
        self.spend.give_back(self.key_id, utc_day(self.spend.clock()), amount)

    return _swap_on(KeySpending, "give_back", give_back)


def charge_on_the_key() -> Undo:
    """The gate opened on the calling key's own id, not its account's: a key of an account spends
    from a balance of its own (none: nothing reserved, nothing charged to the account)."""
    from alphacut.api import metering
    from alphacut.api.credits import CreditGate, KeySpending

    def gate_for(meter: Any, caller: Any, call_id: str, route: str) -> Any:
        if meter is None or caller is None or caller.plan is None or caller.test:
            return saved(meter, caller, call_id, route)
        gate = metering.open_for(meter, caller.plan, caller.key_id, call_id, route)
        if isinstance(gate, CreditGate):
            gate.spending = KeySpending(meter.key_spend, caller.key_id, caller.daily_limit)
        return gate

    saved = metering.gate_for
    return _swap_on(metering, "gate_for", gate_for)


def top_up_reference_unchecked() -> Undo:
    """A top-up's audit item put without its condition that the reference is new: a top-up retried
    with its reference adds its credits again."""

    def rewrite(kind: str, request: dict[str, Any]) -> dict[str, Any]:
        sk = request.get("Item", {}).get("sk", {}).get("S", "")
        if kind == "Put" and sk.startswith("topup#") and "ConditionExpression" in request:
            request = {k: v for k, v in request.items() if k != "ConditionExpression"}
        return request

    return _rewrite(rewrite)


def release_marked_before_credit() -> Undo:
    """The release's second and third writes reordered: the hold marked released, then the balance
    credited; a function stopped between leaves a released hold whose credits never came back."""
    from alphacut.aws.ledger.balances import RELEASING
    from alphacut.aws.ledger.settlement import Settlement

    original = Settlement._refund

    def refund(
        self: Any,
        key_id: str,
        hold_id: str,
        amount: int,
        nonce: str,
        credit: bool = True,
        entry_gone: bool = False,
    ) -> None:
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
        original(self, key_id, hold_id, amount, nonce, credit, entry_gone)

    return _swap("_refund", refund)


def key_spend_plain_update() -> Undo:
    """The key's spending counted through the SDK's retried client (as before issue 90's item 7): a
    write that landed and whose answer was lost is sent again by the SDK and counted twice."""
    from alphacut.aws.ledger.key_spend import KeySpend
    from alphacut.aws.ledger.limits import utc_day

    def spend(self: Any, key_id: str, amount: int, limit: int | None, at: float | None = None) -> Any:
        now = self.clock() if at is None else at
        try:
            answer = self._db.update_item(**self.spend_request(key_id, amount, limit, now))
        except self._db.exceptions.ConditionalCheckFailedException:
            raise self._spent(limit or 0, now) from None
        return utc_day(now), int(answer["Attributes"]["spent"]["N"])

    return _swap_on(KeySpend, "spend", spend)


# the ten bugs of issue 90, item 11 (``PLANTED`` names the scope of each the simulator finds)
ISSUE_90: dict[str, Callable[[], Undo]] = {
    "payment-state-read-then-written": payment_state_read_then_written,
    "unrecorded-payment-from-metadata": unrecorded_payment_from_metadata,
    "take-back-clamped": take_back_clamped,
    "monthly-cap-off-by-one": monthly_cap_off_by_one,
    "take-back-rearms": take_back_rearms,
    "key-spend-never-given-back": key_spend_never_given_back,
    "key-spend-given-back-today": key_spend_given_back_today,
    "charge-on-the-key": charge_on_the_key,
    "top-up-reference-unchecked": top_up_reference_unchecked,
    "release-marked-before-credit": release_marked_before_credit,
}

# each of them in the scope that finds it (docs/benchmarks.md, "Issue 90: the simulator's new scopes")
PLANTED.update(
    {
        "payment-state-read-then-written": ("payments", payment_state_read_then_written),
        "unrecorded-payment-from-metadata": ("payment-order", unrecorded_payment_from_metadata),
        "take-back-clamped": ("auto-top-up", take_back_clamped),
        "monthly-cap-off-by-one": ("auto-top-up", monthly_cap_off_by_one),
        "take-back-rearms": ("crossings", take_back_rearms),
        "key-spend-never-given-back": ("key-midnight", key_spend_never_given_back),
        "key-spend-given-back-today": ("key-midnight", key_spend_given_back_today),
        "charge-on-the-key": ("key-limit", charge_on_the_key),
        "top-up-reference-unchecked": ("top-ups", top_up_reference_unchecked),
        "release-marked-before-credit": ("two-sweeps", release_marked_before_credit),
        "key-spend-plain-update": ("key-spend-retried", key_spend_plain_update),
    }
)
