"""Bugs put back on purpose, each one the simulator must find (tests/unit/test_money_simulator.py):
the two interleavings that lost or created credits before they were fixed, and six mutations of
the protocol (a condition dropped, two writes swapped, a TTL set too early). ``PLANTED`` maps
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
    undo = [PLANTED[name][1]() for name in sorted(names)]
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
