"""Stripe's webhook, applied by the service's own record of each payment, in any order, any number
of times, concurrently.

A payment is the service's only where it made it: its ``payment#`` record (``PaymentRecords``),
written as the PaymentIntent is made, says which key it is for, how many credits and for what
amount (a success that comes before the record, for a PaymentIntent made in the last five minutes,
is answered 503 so that Stripe delivers it again). An event for any other PaymentIntent (made
elsewhere, its metadata naming any key and any credits), or whose amount received or currency
differs from the record's, changes no balance: it is answered 2xx (so Stripe stops), logged and
counted (metric ``UnmatchedPayments``, alarmed).

Each payment is a state machine whose state only moves forward (``STATE_RANK``); every movement of
credits is one ledger transaction that also moves the record's counter, on condition that the
counter still says what was read, so a repeat moves nothing:

| event | credits | state |
|---|---|---|
| ``payment_intent.succeeded`` | the record's credits added, once (``credited``) | succeeded |
| ``payment_intent.payment_failed`` | none | failed (only from created) |
| ``charge.refunded`` | credited first if not yet; the refunded share taken back, up to the | refunded |
| | cumulative ``amount_refunded`` (``refund_taken``) | |
| ``charge.dispute.created`` | credited first if not yet; the disputed share taken back, what a | disputed |
| | refund took not twice (``dispute_taken``); the account suspended, every key of it | |
| ``charge.dispute.funds_withdrawn`` | as ``charge.dispute.created`` (once) | disputed |
| an inquiry (status ``warning_*``) | none: no money has moved | |
| ``charge.dispute.closed`` won | the disputed credits given back | won |
| ``charge.dispute.funds_reinstated`` | as won | won |
| ``charge.dispute.closed`` lost | none | lost |
| ``setup_intent.succeeded`` | none: the card saved for the key whose customer set it up | |

Credits taken back that were spent (or are held by a call not settled yet) leave the balance
below zero: what the store owes, paid first by held credits that come back and by its next
top-up; nothing can be reserved meanwhile (``CreditLedger.take_back``). A take-back never arms the
low-balance threshold again; only a payment credited for the first time does.

A body whose signature fails is SignatureInvalid (400), before anything is read from it.

Usage::

    events = StripeEvents(account, records, ledger, key_store)
    events.receive(raw_body, headers["Stripe-Signature"])     # "credited 40" | "already credited" | ...
    events.refund("pi_...")                                   # the CLI: refunded through Stripe, taken back
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from alphacut.aws.billing.payments import Payment, PaymentRecords
from alphacut.aws.ledger.credits import CreditLedger
from alphacut.billing.stripe_account import StripeAccount
from alphacut.errors import BillingUnavailable, InvalidOption, NotFound
from alphacut.pricing import MILLI
from alphacut.pricing import credits as whole_credits

if TYPE_CHECKING:
    from alphacut.aws.keys.store import KeyStore

logger = Logger(child=True)
metrics = Metrics()
# how long after a PaymentIntent is made its success may come before the service's record of it
RECORD_RACE_SECONDS = 300


def share(payment: Payment, amount: int) -> int:
    """The millicredits ``amount`` minor units of the payment are worth (a partial refund or
    dispute: its share of the credits, rounded down; never more than the payment's credits)."""
    if payment.amount <= 0:
        return 0
    return min(payment.credits * MILLI, payment.credits * MILLI * max(0, amount) // payment.amount)


class StripeEvents:
    def __init__(
        self,
        account: StripeAccount | None,
        records: PaymentRecords,
        ledger: CreditLedger,
        keys: KeyStore | None = None,
    ):
        self.account, self.records, self.ledger, self.keys = account, records, ledger, keys
        self.clock = records.clock

    def receive(self, payload: bytes, signature_header: str) -> str:
        """Verify, then apply; what was done, in words (for the log and the 200 answer)."""
        if self.account is None:
            raise BillingUnavailable("the webhook is checked with Stripe's secret: no account here")
        return self.apply(self.account.event(payload, signature_header))

    def apply(self, event: dict[str, Any]) -> str:
        if not isinstance(event, dict):
            return "ignored: not an event"
        kind = event.get("type", "")
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict):
            return "ignored: an event without an object"
        handler = {
            "payment_intent.succeeded": self._succeeded,
            "payment_intent.payment_failed": self._failed,
            "charge.refunded": self._refunded,
            "charge.dispute.created": self._disputed,
            "charge.dispute.funds_withdrawn": self._disputed,
            "charge.dispute.closed": self._dispute_closed,
            "charge.dispute.funds_reinstated": lambda dispute: self._dispute_closed(
                {**dispute, "status": "won"}
            ),
            "setup_intent.succeeded": self._card_set_up,
        }.get(kind)
        done = handler(obj) if handler else "ignored"
        logger.info("stripe event", extra={"event": event.get("id"), "type": kind, "done": done})
        return done

    def _ours(self, obj: dict[str, Any], field: str = "id") -> Payment | None:
        payment_id = obj.get(field)
        return self.records.find(payment_id) if isinstance(payment_id, str) and payment_id else None

    def _not_recorded_yet(self, obj: dict[str, Any]) -> None:
        """A saved card is charged as its PaymentIntent is made, so Stripe's success can come before
        the service has written its record: for a PaymentIntent made moments ago, answer 503 so that
        Stripe delivers it again (it retries for days); after ``RECORD_RACE_SECONDS`` it is not ours."""
        created = obj.get("created")
        if isinstance(created, int) and 0 <= self.clock() - created < RECORD_RACE_SECONDS:
            raise BillingUnavailable("this payment is not recorded yet: Stripe delivers it again")

    def _unmatched(self, why: str, obj: dict[str, Any]) -> str:
        metrics.add_metric(name="UnmatchedPayments", unit=MetricUnit.Count, value=1)
        logger.warning(
            "a Stripe event that matches no payment of this service",
            extra={"why": why, "object": obj.get("id")},
        )
        return f"unmatched: {why}"

    # ---- payments -----------------------------------------------------------------------------------
    def _credit(self, payment: Payment) -> bool:
        """Add the record's credits once; True when this call added them."""
        try:
            self.ledger.top_up(
                payment.key_id,
                payment.credits * MILLI,
                reference=payment.payment_id,
                note=f"card payment {payment.amount} {payment.currency}",
                also=[self.records.counter_item(payment, "credited", 0, payment.credits * MILLI)],
            )
        except InvalidOption:  # credited before: the reference was used, or the record says so
            return False
        return True

    def _succeeded(self, obj: dict[str, Any]) -> str:
        payment = self._ours(obj)
        if payment is None:
            self._not_recorded_yet(obj)
            return self._unmatched("a PaymentIntent this service did not make", obj)
        received = obj.get("amount_received")
        received = obj.get("amount") if received is None else received
        if received != payment.amount or (obj.get("currency") or "").lower() != payment.currency:
            return self._unmatched(
                f"{received} {obj.get('currency')} received for {payment.amount} {payment.currency}", obj
            )
        credited = self._credit(payment)
        receipt = self._receipt(obj)
        moved = self.records.advance(payment, "succeeded", **({"receipt_url": receipt} if receipt else {}))
        if credited and moved:  # a payment credited for the first time, not on its way out
            self.ledger.rearm_low_balance(payment.key_id)
        return f"credited {payment.credits}" if credited else "already credited"

    def _receipt(self, obj: dict[str, Any]) -> str:
        """The receipt of the payment's charge: the event's PaymentIntent names it by id only, so
        it is read from Stripe (best effort: a payment is credited whether or not it is)."""
        charge = obj.get("latest_charge")
        if isinstance(charge, dict):
            return str(charge.get("receipt_url") or "")
        if self.account is None:
            return ""
        try:
            return self.account.receipt_url(str(obj.get("id")))
        except BillingUnavailable:
            return ""

    def _failed(self, obj: dict[str, Any]) -> str:
        payment = self._ours(obj)
        if payment is None:
            return self._unmatched("a PaymentIntent this service did not make", obj)
        error = obj.get("last_payment_error") or {}
        failure = (error.get("message") if isinstance(error, dict) else "") or "declined"
        return (
            "marked failed"
            if self.records.advance(payment, "failed", failure=failure)
            else "already past failed"
        )

    def refund(self, intent_id: str) -> dict[str, Any]:
        """The operator's refund (``alphacut billing refund``): the whole payment refunded through
        Stripe, its credits taken back (what was spent stays owed)."""
        payment = self.records.find(intent_id)
        if payment is None or payment.state not in ("succeeded", "refunded"):
            raise NotFound(f"no succeeded payment {intent_id} for credits", field="payment")
        if self.account is None:
            raise BillingUnavailable("refunds go through Stripe: no account here")
        self.account.refund(intent_id)
        taken = self._take_back(payment, "refund_taken", share(payment, payment.amount), "refunded")
        after = self.records.payment(payment.key_id, payment.payment_id) or payment
        return {
            "payment": intent_id,
            "key_id": payment.key_id,
            "credits_taken_back": whole_credits(taken),
            "credits_owed": after.owed_credits,
        }

    def _take_back(self, payment: Payment, counter: str, target: int, state: str, tag: str = "") -> int:
        """Move the payment's ``counter`` up to ``target`` millicredits, taking the difference off
        the balance in the same transaction (credited first: a refund or dispute that overtook the
        success); then the state. The millicredits this call took."""
        self._credit(payment)
        taken = 0
        for _ in range(5):  # another event of the same payment may move the counter between reads
            now = self.records.payment(payment.key_id, payment.payment_id) or payment
            was = getattr(now, counter)
            if target <= was:
                break
            other = "dispute_taken" if counter == "refund_taken" else "refund_taken"
            # what the other way of taking back took already is not taken again
            target = min(target, now.credits * MILLI - getattr(now, other))
            if target <= was:
                break
            whole = counter == "refund_taken" and target == now.credits * MILLI
            # a take-back's reference, once each: a second dispute (``tag``: its id) after a won one
            # moves the same counter over the same figures again
            reference = payment.payment_id if whole else f"{payment.payment_id}:{counter}:{target}{tag}"
            done = self.ledger.take_back(
                payment.key_id,
                target - was,
                reference,
                note=f"card payment {state}",
                also=[self.records.counter_item(now, counter, was, target, {other: getattr(now, other)})],
            )
            if done is not None:
                taken = done.taken
                self.records.note(now, owed_credits=done.owed // MILLI)
                break
        self.records.advance(payment, state)
        return taken

    def _refunded(self, obj: dict[str, Any]) -> str:
        payment = self._ours(obj, "payment_intent")
        if payment is None:
            return self._unmatched("a refund of a payment this service did not make", obj)
        refunded = obj.get("amount_refunded")
        amount = refunded if isinstance(refunded, int) else payment.amount  # a whole refund
        taken = self._take_back(payment, "refund_taken", share(payment, amount), "refunded")
        return f"taken back {whole_credits(taken)}"

    def _disputed(self, obj: dict[str, Any]) -> str:
        payment = self._ours(obj, "payment_intent")
        if payment is None:
            return self._unmatched("a dispute of a payment this service did not make", obj)
        if str(obj.get("status") or "").startswith("warning_"):  # an inquiry: no money has moved yet
            return "inquiry: nothing taken"
        disputed = obj.get("amount")
        amount = disputed if isinstance(disputed, int) else payment.amount
        current = self.records.payment(payment.key_id, payment.payment_id) or payment
        if current.state == "won":  # closed in the store's favour before this news came
            return "ignored: the dispute was won already"
        tag = f":{obj['id']}" if isinstance(obj.get("id"), str) else ""
        taken = self._take_back(payment, "dispute_taken", share(payment, amount), "disputed", tag)
        suspended = self._suspend(payment, obj)
        return f"taken back {whole_credits(taken)}; account {payment.key_id} {suspended}"

    def _suspend(self, payment: Payment, obj: dict[str, Any]) -> str:
        """Every key of the paying account refused until the operator decides (revoked keys too are
        recorded the same: the dispute and its credits taken back stand)."""
        if self.keys is None:
            return "not suspended (no key store)"
        from alphacut.aws.keys.accounts import AccountKeys

        reason = f"card payment {payment.payment_id} disputed ({obj.get('reason', 'no reason')})"
        stopped = AccountKeys(self.keys).suspend_account(payment.key_id, reason)
        return f"suspended ({len(stopped)} live keys)"

    def _dispute_closed(self, obj: dict[str, Any]) -> str:
        payment = self._ours(obj, "payment_intent")
        if payment is None:
            return self._unmatched("a dispute of a payment this service did not make", obj)
        status = obj.get("status")
        if status == "lost":
            return "lost" if self.records.advance(payment, "lost") else "already closed"
        if status != "won":  # an inquiry closed (warning_closed) took nothing: nothing to give back
            return f"ignored: dispute {status}"
        current = self.records.payment(payment.key_id, payment.payment_id) or payment
        given = current.dispute_taken
        if given and current.state == "disputed":
            try:
                self.ledger.top_up(
                    payment.key_id,
                    given,
                    reference=f"{payment.payment_id}:dispute-won"
                    + (f":{obj['id']}" if isinstance(obj.get("id"), str) else ""),
                    note="card payment dispute won",
                    also=[self.records.counter_item(current, "dispute_taken", given, 0)],
                )
            except InvalidOption:
                given = 0  # given back before
        self.records.advance(payment, "won")
        return f"won: given back {whole_credits(given)}"

    def _card_set_up(self, obj: dict[str, Any]) -> str:
        metadata = obj.get("metadata")
        key_id = metadata.get("key_id", "") if isinstance(metadata, dict) else ""
        method = obj.get("payment_method")
        card = method if isinstance(method, str) else (method or {}).get("id", "")
        if not key_id or not card or self.records.profile(key_id).customer != obj.get("customer"):
            return "ignored: not a card set up for a key"
        self.records.save_profile(key_id, card=card)
        return "card saved"
