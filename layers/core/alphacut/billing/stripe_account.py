"""The one place the ``stripe`` SDK is called: PaymentIntents for credits, SetupIntents for a saved
card, refunds, and the webhook's signature (the SDK's own verifier). Everything else in billing
speaks of payments, not of Stripe objects.

``ALPHACUT_STRIPE_API_BASE`` points the SDK at another Stripe (the tests' localstripe); Stripe.js
in the page comes from ``ALPHACUT_STRIPE_JS_URL`` to match.

Usage::

    account = StripeAccount(settings)
    intent = account.intent_for("k123", 40, 800)          # Intent(id="pi_...", client_secret=..., ...)
    event = account.event(raw_body, request_headers["Stripe-Signature"])   # or SignatureInvalid
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import stripe

from alphacut.billing.settings import BillingSettings
from alphacut.deadlines import seconds_left
from alphacut.errors import (
    BillingUnavailable,
    InvalidOption,
    PaymentDeclined,
    PaymentRefused,
    SignatureInvalid,
)

# a webhook older than this is refused (the SDK's default tolerance; replays past it are forgeries)
SIGNATURE_TOLERANCE_SECONDS = 300
# One Stripe attempt as a whole, what the deadline reserves for it: with a retry, well inside the
# functions' 29 s. requests' timeout is per socket operation (connect, then each read), so one 8 s
# figure let an attempt take 8 s to connect and 8 more to answer; the two are split to sum to it. Each
# read of the answer has the read share (Stripe's answers are a few KB, read in one or two); DNS has
# no timeout in requests.
TIMEOUT_SECONDS = 8
CONNECT_SECONDS = 2  # TCP and the TLS handshake to api.stripe.com; the read has the rest
RETRY_WAIT_SECONDS = 0.5  # the SDK's first wait before a retry (stripe's HTTPClient.INITIAL_DELAY)


def time_left_options() -> dict[str, Any]:
    """A Stripe request's options inside the call's deadline (``alphacut.deadlines``): a request
    that could outlive it is never started (a charge made after API Gateway answered 504, or after
    the function timed out, is one the store never hears of), and its retry only where a second
    timeout and the SDK's half-second wait before it fit."""
    left = seconds_left()
    if left is not None and left < TIMEOUT_SECONDS:
        raise BillingUnavailable(
            f"too little of the call's time is left to reach Stripe ({max(left, 0):.0f} s of "
            f"{TIMEOUT_SECONDS} s): nothing was charged, try again",
            limit=TIMEOUT_SECONDS,
        )
    if left is not None and left < 2 * TIMEOUT_SECONDS + RETRY_WAIT_SECONDS:
        return {"max_network_retries": 0}
    return {}


def http_client() -> stripe.RequestsClient:
    """The SDK's HTTP client (requests, as the SDK picks by default) with a connect and a read
    timeout that sum to ``TIMEOUT_SECONDS``."""
    return stripe.RequestsClient(timeout=(CONNECT_SECONDS, TIMEOUT_SECONDS - CONNECT_SECONDS))


@dataclass(frozen=True)
class Intent:
    """A PaymentIntent as billing needs it."""

    id: str
    client_secret: str
    amount: int
    currency: str
    status: str
    key_id: str = ""
    credits: int = 0
    receipt_url: str = ""
    failure: str = ""
    reason: str = "purchase"  # purchase | auto (an automatic top-up)

    @classmethod
    def of(cls, obj: Any) -> Intent:
        metadata = obj.get("metadata") or {}
        charge = obj.get("latest_charge")
        receipt = charge.get("receipt_url") if isinstance(charge, dict) else None
        error = obj.get("last_payment_error") or {}
        return cls(
            obj["id"],
            obj.get("client_secret") or "",
            int(obj.get("amount") or 0),
            obj.get("currency") or "",
            obj.get("status") or "",
            metadata.get("key_id", ""),
            int(metadata.get("credits") or 0),
            receipt or "",
            error.get("message", "") if isinstance(error, dict) else "",
            metadata.get("reason") or "purchase",
        )


class StripeAccount:
    def __init__(self, settings: BillingSettings):
        self.settings = settings

    @cached_property
    def client(self) -> stripe.StripeClient:
        return stripe.StripeClient(
            self.settings.stripe_keys.secret_key,
            base_addresses={"api": self.settings.stripe_api_base},
            http_client=http_client(),
            max_network_retries=1,  # the SDK sends an idempotency key with each, so a retry charges once
        )

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The SDK's answer as a plain dict (nested objects too); its errors as ours; inside the
        call's deadline (``time_left_options``)."""
        kwargs["options"] = {**(kwargs.get("options") or {}), **time_left_options()}
        try:
            return dict(method(*args, **kwargs).to_dict())
        except stripe.CardError as error:
            declined = PaymentDeclined(error.user_message or "the card was declined", field="card")
            declined.payment_id = self._declined_intent(error)
            raise declined from None
        except (stripe.InvalidRequestError, stripe.IdempotencyError) as error:
            # Stripe's answer to this very request: sending it again (the same key) gets it again
            raise PaymentRefused(f"Stripe refused the request: {error.user_message or error}") from None
        except stripe.StripeError as error:
            raise BillingUnavailable(f"Stripe did not answer: {error.user_message or error}") from None

    def _declined_intent(self, error: stripe.CardError) -> str:
        """The PaymentIntent a declined charge belongs to: in Stripe's error, or through its charge
        (Stripe's emulators name only the charge); "" where neither says."""
        sent: Any = error.json_body if isinstance(error.json_body, dict) else {}
        body: Any = sent.get("error") if isinstance(sent.get("error"), dict) else {}
        intent = body.get("payment_intent")
        if isinstance(intent, dict):
            return str(intent.get("id") or "")
        if isinstance(intent, str):
            return intent
        charge = body.get("charge")
        if not isinstance(charge, str) or not charge:
            return ""
        try:
            return str(self.client.v1.charges.retrieve(charge).to_dict().get("payment_intent") or "")
        except stripe.StripeError:
            return ""

    # ---- credits ------------------------------------------------------------------------------------
    def intent_for(
        self,
        key_id: str,
        credits: int,
        amount: int,
        customer: str = "",
        payment_method: str = "",
        off_session: bool = False,
        idempotency_key: str = "",
        reason: str = "purchase",
        currency: str = "",
    ) -> Intent:
        """A PaymentIntent for ``credits`` at ``amount`` minor units; with a saved ``payment_method``
        it is confirmed at once (``off_session`` for an automatic top-up, no customer present). The
        caller records it (``PaymentRecords.created``); its metadata is for people reading Stripe's
        dashboard, and the webhook never trusts it for money (``alphacut.billing.stripe_events``).
        ``currency``: the operator's unless given (a retry sends its first attempt's)."""
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency or self.settings.currency,
            "payment_method_types": ["card"],  # a card, confirmed here or by Stripe.js: no redirect
            "metadata": {"key_id": key_id, "credits": str(credits), "reason": reason},
        }
        if customer:
            params["customer"] = customer
        if payment_method:
            params.update(payment_method=payment_method, confirm=True)
            if off_session:
                params["off_session"] = True
        options = {"idempotency_key": idempotency_key} if idempotency_key else None
        intent = self._call(self.client.v1.payment_intents.create, params=params, options=options)
        return Intent.of(intent)

    def intent(self, intent_id: str) -> Intent:
        return Intent.of(self._call(self.client.v1.payment_intents.retrieve, intent_id))

    def receipt_url(self, intent_id: str) -> str:
        """The receipt of a PaymentIntent's latest charge ("" where Stripe gives none): the webhook's
        PaymentIntent names its charge by id only."""
        params = {"expand": ["latest_charge"]}
        intent = self._call(self.client.v1.payment_intents.retrieve, intent_id, params=params)
        charge = intent.get("latest_charge")
        return str(charge.get("receipt_url") or "") if isinstance(charge, dict) else ""

    def refund(self, intent_id: str) -> int:
        """Refund the PaymentIntent's whole charge; the amount refunded (minor units)."""
        refund = self._call(self.client.v1.refunds.create, params={"payment_intent": intent_id})
        return int(refund.get("amount") or 0)

    # ---- a saved card -------------------------------------------------------------------------------
    def customer_for(self, key_id: str, email: str = "") -> str:
        params: dict[str, Any] = {"metadata": {"key_id": key_id}}
        if email:
            params["email"] = email
        return str(self._call(self.client.v1.customers.create, params=params)["id"])

    def setup_intent(self, customer: str, key_id: str) -> tuple[str, str]:
        """A SetupIntent to save a card for later charges: (its id, its client secret)."""
        intent = self._call(
            self.client.v1.setup_intents.create,
            params={"customer": customer, "usage": "off_session", "metadata": {"key_id": key_id}},
        )
        return str(intent["id"]), str(intent["client_secret"])

    def saved_card(self, setup_intent_id: str, customer: str) -> str:
        """The card a succeeded SetupIntent of ``customer`` saved (its PaymentMethod id), or "" when
        the SetupIntent is not this customer's or did not succeed."""
        try:
            retrieve: Any = self.client.v1.setup_intents.retrieve  # its options: a TypedDict of the SDK's
            intent = dict(retrieve(setup_intent_id, options=time_left_options()).to_dict())
        except stripe.InvalidRequestError:
            return ""  # no such SetupIntent in this account: not one set up for this key (a 400)
        except stripe.StripeError as error:
            raise BillingUnavailable(f"Stripe did not answer: {error.user_message or error}") from None
        if intent.get("customer") != customer or intent.get("status") != "succeeded":
            return ""
        method = intent.get("payment_method")
        return str(method if isinstance(method, str) else (method or {}).get("id", ""))

    # ---- the webhook --------------------------------------------------------------------------------
    def event(self, payload: bytes, signature_header: str) -> dict[str, Any]:
        """The event Stripe sent, once its signature checks out with the webhook secret; otherwise
        SignatureInvalid (a forged, altered or replayed-too-late body)."""
        secret = self.settings.stripe_keys.webhook_secret
        if not secret:
            raise BillingUnavailable("the Stripe webhook secret is not set on this deployment")
        try:
            event = stripe.Webhook.construct_event(
                payload, signature_header or "", secret, tolerance=SIGNATURE_TOLERANCE_SECONDS
            )
        except (stripe.SignatureVerificationError, ValueError):
            raise SignatureInvalid(
                "the Stripe-Signature header does not match this body and the webhook secret",
                field="Stripe-Signature",
            ) from None
        except (TypeError, AttributeError, KeyError):  # signed, yet not an event's shape
            raise InvalidOption("the body is not a Stripe event (a JSON object)", field="body") from None
        return dict(event.to_dict())
