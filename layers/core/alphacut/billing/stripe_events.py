"""Stripe's webhook, applied once whatever Stripe repeats or reorders.

- ``payment_intent.succeeded``: the PaymentIntent's credits added to its key, once per
  PaymentIntent (the ledger's top-up reference is its id, so a repeat, or the same success in a
  new event, adds nothing); the key's low-balance threshold armed again
- ``payment_intent.payment_failed``: nothing added; the payment marked failed (an automatic top-up's
  failure is also told to the store by ``alphacut.billing.low_balance``)
- ``charge.refunded``: the refunded credits taken back (``refund``), never below zero
- ``charge.dispute.created``: the key suspended until the operator decides
  (``alphacut keys reinstate``), the payment marked disputed
- ``setup_intent.succeeded``: the card saved for the key it was set up for
- anything else: acknowledged, nothing done

A body whose signature fails is SignatureInvalid (400), before anything is read from it.

Usage::

    events = StripeEvents(account, records, ledger, key_store)
    events.receive(raw_body, headers["Stripe-Signature"])     # "credited 40" | "already credited" | ...
    events.refund("pi_...")                                   # the CLI: refunded through Stripe, taken back
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from alphacut.aws.credits import CreditLedger
from alphacut.aws.payments import PaymentRecords
from alphacut.billing.stripe_account import Intent, StripeAccount
from alphacut.errors import InvalidOption, NotFound
from alphacut.pricing import MILLI
from alphacut.pricing import credits as whole_credits

if TYPE_CHECKING:
    from alphacut.aws.keystore import KeyStore

logger = Logger(child=True)


class StripeEvents:
    def __init__(
        self,
        account: StripeAccount,
        records: PaymentRecords,
        ledger: CreditLedger,
        keys: KeyStore | None = None,
    ):
        self.account, self.records, self.ledger, self.keys = account, records, ledger, keys

    def receive(self, payload: bytes, signature_header: str) -> str:
        """Verify, then apply; what was done, in words (for the log and the 200 answer)."""
        return self.apply(self.account.event(payload, signature_header))

    def apply(self, event: dict[str, Any]) -> str:
        kind = event.get("type", "")
        obj = (event.get("data") or {}).get("object") or {}
        handler = {
            "payment_intent.succeeded": self._succeeded,
            "payment_intent.payment_failed": self._failed,
            "charge.refunded": self._refunded,
            "charge.dispute.created": self._disputed,
            "setup_intent.succeeded": self._card_set_up,
        }.get(kind)
        done = handler(obj) if handler else "ignored"
        logger.info("stripe event", extra={"event": event.get("id"), "type": kind, "done": done})
        return done

    # ---- payments -----------------------------------------------------------------------------------
    def credit(self, intent: Intent) -> str:
        """Add a succeeded PaymentIntent's credits to its key, once per PaymentIntent."""
        if not intent.key_id or intent.credits <= 0:
            return "ignored: not a payment for credits"
        self.records.created(
            intent.key_id, intent.id, intent.credits, intent.amount, intent.currency, intent.reason
        )
        try:
            self.ledger.top_up(
                intent.key_id,
                intent.credits * MILLI,
                reference=intent.id,
                note=f"card payment {intent.amount} {intent.currency}",
            )
            done = f"credited {intent.credits}"
        except InvalidOption:  # the reference was used: this PaymentIntent was credited before
            done = "already credited"
        self.records.mark(intent.key_id, intent.id, "succeeded", receipt_url=intent.receipt_url)
        self.ledger.rearm_low_balance(intent.key_id)
        return done

    def _succeeded(self, obj: dict[str, Any]) -> str:
        return self.credit(Intent.of(obj))

    def _failed(self, obj: dict[str, Any]) -> str:
        intent = Intent.of(obj)
        if not intent.key_id:
            return "ignored: not a payment for credits"
        self.records.created(
            intent.key_id, intent.id, intent.credits, intent.amount, intent.currency, intent.reason
        )
        self.records.mark(intent.key_id, intent.id, "failed", failure=intent.failure or "declined")
        return "marked failed"

    def refund(self, intent_id: str) -> dict[str, Any]:
        """The operator's refund (``alphacut billing refund``): the whole payment refunded through
        Stripe, its credits taken back as far as the balance goes (the rest stays owed)."""
        intent = self.account.intent(intent_id)
        if not intent.key_id or intent.status != "succeeded":
            raise NotFound(f"no succeeded payment {intent_id} for credits", field="payment")
        self.account.refund(intent_id)
        return self._take_back(intent)

    def _take_back(self, intent: Intent) -> dict[str, Any]:
        self.credit(intent)  # a refund that overtook the success: the credits exist before they go
        taken = self.ledger.take_back(
            intent.key_id, intent.credits * MILLI, intent.id, note="card payment refunded"
        )
        self.records.mark(
            intent.key_id,
            intent.id,
            "refunded",
            refunded_credits=int(whole_credits(taken.taken)),
            owed_credits=int(whole_credits(taken.owed)),
        )
        return {
            "payment": intent.id,
            "key_id": intent.key_id,
            "credits_taken_back": whole_credits(taken.taken),
            "credits_owed": whole_credits(taken.owed),
        }

    def _refunded(self, obj: dict[str, Any]) -> str:
        intent_id = obj.get("payment_intent") or ""
        if not intent_id or not self.records.key_of(intent_id):
            return "ignored: not a payment of this service"
        done = self._take_back(self.account.intent(intent_id))
        return f"taken back {done['credits_taken_back']}, owed {done['credits_owed']}"

    def _disputed(self, obj: dict[str, Any]) -> str:
        intent_id = obj.get("payment_intent") or ""
        key_id = self.records.key_of(intent_id) if intent_id else ""
        if not key_id:
            return "ignored: not a payment of this service"
        if self.keys is not None:
            self.keys.suspend(key_id, f"card payment {intent_id} disputed ({obj.get('reason', 'no reason')})")
        self.records.mark(key_id, intent_id, "disputed")
        return f"key {key_id} suspended"

    def _card_set_up(self, obj: dict[str, Any]) -> str:
        key_id = (obj.get("metadata") or {}).get("key_id", "")
        method = obj.get("payment_method")
        card = method if isinstance(method, str) else (method or {}).get("id", "")
        if not key_id or not card or self.records.profile(key_id).customer != obj.get("customer"):
            return "ignored: not a card set up for a key"
        self.records.save_profile(key_id, card=card)
        return "card saved"
