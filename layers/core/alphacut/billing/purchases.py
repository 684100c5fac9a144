"""What a store does from its key: buy credits (a PaymentIntent the page's Stripe.js confirms, or
one charged at once to the saved card), save a card for later, set its low-balance threshold and
automatic top-up, read its payments.

Usage::

    purchases = Purchases(settings, StripeAccount(settings), PaymentRecords(table), CreditLedger(table))
    purchases.buy("k123", {"credits": 40})     # {"payment_intent": "pi_...", "client_secret": ..., ...}
    purchases.save_card("k123", {})            # {"setup_intent": "seti_...", "client_secret": ...}
    purchases.configure("k123", {"low_balance": 20, "auto_top_up": "store"})
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Mapping
from typing import Any

from alphacut.aws.billing.payments import PaymentRecords, Profile
from alphacut.aws.ledger.credits import CreditLedger
from alphacut.billing.settings import BillingSettings
from alphacut.billing.stripe_account import StripeAccount
from alphacut.errors import InvalidOption, PaymentDeclined, PaymentsLimited
from alphacut.pricing import MILLI
from alphacut.pricing import credits as whole_credits
from alphacut.urlfetch import check_callback_url

MAX_URL = 2048
SETUP_INTENT = re.compile(r"^seti_[A-Za-z0-9_]{1,250}$")


class Purchases:
    def __init__(
        self,
        settings: BillingSettings,
        account: StripeAccount,
        records: PaymentRecords,
        ledger: CreditLedger,
        allowed_hosts: tuple[str, ...] = (),
    ):
        self.settings, self.account, self.records, self.ledger = settings, account, records, ledger
        self.allowed_hosts = allowed_hosts  # hosts a notify_url may name beside public ones (as callbacks)

    def config(self) -> dict[str, Any]:
        """What the page needs to take a card (the publishable key is public by design)."""
        return {
            "publishable_key": self.settings.stripe_keys.publishable_key,
            "stripe_js": self.settings.stripe_js_url,
            "currency": self.settings.currency,
            "price_per_credit": str(self.settings.price_per_credit),
            "packs": self.settings.packs,
            "min_credits": self.settings.smallest_purchase,
            "max_credits": self.settings.max_credits,
        }

    def _credits_plan(self, key_id: str) -> None:
        """A key whose plan counts calls a day, not credits, buys nothing it could not spend."""
        if self.ledger.balance(key_id) is None:
            raise InvalidOption(
                "this key's plan has a daily quota, not credits: it cannot buy credits", field="plan"
            )

    def _count_ask(self, key_id: str) -> None:
        """One of the PaymentIntents and SetupIntents the key may ask for this hour, or 429."""
        now = int(self.records.clock())
        hour = time.strftime("%Y-%m-%dT%H", time.gmtime(now))
        limit = self.settings.payment_asks_per_hour
        if not self.records.count(key_id, f"intents#{hour}", limit):
            raise PaymentsLimited(
                f"this account asked for {limit} payments or card saves this hour: finish one, "
                "or try again later",
                retry_after=3600 - now % 3600,
                limit=limit,
            )

    def _saved_card_charge(self, key_id: str, profile: Profile, asked: int) -> None:
        """A charge of the saved card without the card holder (its page confirms no 3-D Secure): at
        most the largest pack, and one of the month's charges of the saved card, automatic top-ups
        included (``auto_top_up_monthly_cap``): a leaked key costs the store at most the cap."""
        largest = max(self.settings.packs.values())
        if asked > largest:
            raise InvalidOption(
                f"a saved card is charged at most {largest} credits at once: buy more with the card at hand",
                field="credits",
                limit=largest,
            )
        now = int(self.records.clock())
        month = time.strftime("%Y-%m", time.gmtime(now))
        cap = profile.cap_in(month, self.settings.auto_top_ups_per_month)
        if not self.records.count(key_id, f"auto#{month}", cap):
            raise PaymentsLimited(
                f"the saved card was charged {cap} times this month, its cap: raise "
                "auto_top_up_monthly_cap (from next month), or pay with the card at hand",
                retry_after=_seconds_to_next_month(now),
                limit=cap,
            )

    def buy(self, key_id: str, body: Mapping[str, Any], asked_by: str = "") -> dict[str, Any]:
        """A PaymentIntent for the credits asked (``key_id``: the account; ``asked_by``: its key that
        asked, kept on the record); ``saved_card: true`` charges the saved card now (``status`` says
        whether Stripe.js must still act: ``requires_action``)."""
        asked = self.settings.credits_asked(body)
        saved = body.get("saved_card", False)
        if not isinstance(saved, bool):
            raise InvalidOption("must be true or false", field="saved_card")
        self._credits_plan(key_id)
        profile = self.records.profile(key_id)
        if saved and not profile.card:
            raise InvalidOption(
                "no card is saved for this key: save one first (POST /v1/billing/card)", field="saved_card"
            )
        self._count_ask(key_id)
        if saved:
            self._saved_card_charge(key_id, profile, asked)
        amount = self.settings.price_of(asked)
        try:
            intent = self.account.intent_for(
                key_id,
                asked,
                amount,
                customer=profile.customer if saved else "",
                payment_method=profile.card if saved else "",
            )
        except PaymentDeclined as declined:  # the saved card refused: its PaymentIntent says failed
            if declined.payment_id:
                self.records.record_failed(
                    key_id, declined.payment_id, asked, amount, self.settings.currency, declined.message
                )
            raise
        self.records.created(key_id, intent.id, asked, amount, self.settings.currency, asked_by=asked_by)
        return {
            "payment_intent": intent.id,
            "client_secret": intent.client_secret,
            "amount": amount,
            "currency": intent.currency,
            "credits": asked,
            "status": intent.status,
        }

    def save_card(self, key_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Without ``setup_intent``: a SetupIntent for the page to confirm with the card. With the id
        of one that succeeded: its card becomes the key's saved card (for automatic top-ups)."""
        profile = self.records.profile(key_id)
        setup_intent = body.get("setup_intent")
        if setup_intent is not None and (
            not isinstance(setup_intent, str) or not SETUP_INTENT.match(setup_intent)
        ):
            raise InvalidOption("must be the id of a SetupIntent (seti_...)", field="setup_intent")
        if setup_intent:
            card = self.account.saved_card(str(setup_intent), profile.customer) if profile.customer else ""
            if not card:
                raise InvalidOption(
                    "not a card set up for this key, or its set-up did not succeed", field="setup_intent"
                )
            self.records.save_profile(key_id, card=card)
            return {"card_saved": True}
        self._credits_plan(key_id)
        self._count_ask(key_id)
        customer = profile.customer
        if not customer:
            customer = self.account.customer_for(key_id, profile.email)
            self.records.save_profile(key_id, customer=customer)
        intent_id, secret = self.account.setup_intent(customer, key_id)
        return {"setup_intent": intent_id, "client_secret": secret}

    def configure(self, key_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The key's low-balance threshold (credits; 0 none), the pack an automatic top-up buys ("" or
        null: off), how many it may buy a calendar month, and where the webhook goes (``notify_url``;
        the email is ``alphacut.billing.notices``'); fields left out stay. A threshold at or above the
        top-up's pack is refused: a top-up would leave the balance below it, and each call would buy
        again."""
        # a member that is null is not given (the document's JSON rule), where null clears nothing
        body = {k: v for k, v in body.items() if v is not None or k in ("auto_top_up", "notify_url")}
        profile = self.records.profile(key_id)
        changes: dict[str, str | int] = {}
        pack = profile.auto_pack
        if "auto_top_up" in body:
            pack = "" if body["auto_top_up"] is None else body["auto_top_up"]
            if pack != "" and (not isinstance(pack, str) or pack not in self.settings.packs):
                raise InvalidOption(
                    f"must be one of {', '.join(sorted(self.settings.packs))}, or null", field="auto_top_up"
                )
            if pack and not profile.card:
                raise InvalidOption("save a card first (POST /v1/billing/card)", field="auto_top_up")
            changes["auto_pack"] = str(pack)
        if "auto_top_up_monthly_cap" in body:
            changes.update(self._cap_change(profile, body["auto_top_up_monthly_cap"]))
        if "notify_url" in body:
            url = "" if body["notify_url"] is None else body["notify_url"]
            if url != "" and (not isinstance(url, str) or len(url) > MAX_URL):
                raise InvalidOption(
                    f"must be an http(s) URL of at most {MAX_URL} characters",
                    field="notify_url",
                    limit=MAX_URL,
                )
            if url:  # the task callbacks' rule: one that could never be delivered is refused now
                check_callback_url(url, self.allowed_hosts, field="notify_url")
            changes["notify_url"] = str(url)
        standing = self.ledger.standing(key_id)
        low = standing.low_at // MILLI if standing is not None else 0
        if "low_balance" in body:
            low = body["low_balance"]
            if isinstance(low, bool) or not isinstance(low, int) or not 0 <= low <= self.settings.max_credits:
                raise InvalidOption(
                    f"must be a whole number of credits from 0 to {self.settings.max_credits}",
                    field="low_balance",
                    limit=self.settings.max_credits,
                )
            if standing is None:
                raise InvalidOption("this key is not on a credits plan", field="low_balance")
        if pack and low >= self.settings.packs[str(pack)]:
            raise InvalidOption(
                f"must be below the {self.settings.packs[str(pack)]} credits the automatic top-up buys "
                f"({pack}): a top-up would leave the balance below it",
                field="low_balance",
                limit=self.settings.packs[str(pack)] - 1,
            )
        self.records.save_profile(key_id, **changes)
        if "low_balance" in body:
            self.ledger.set_low_balance(key_id, body["low_balance"] * MILLI)
        return self.view(key_id)

    def _cap_change(self, profile: Profile, cap: Any) -> dict[str, str | int]:
        """A new monthly cap: lowered, at once; raised, from the next calendar month (so a key that
        raises it buys no more this month than the cap it found)."""
        most = self.settings.max_auto_top_ups
        if isinstance(cap, bool) or not isinstance(cap, int) or not 0 <= cap <= most:
            raise InvalidOption(
                f"must be a whole number of automatic top-ups a month, from 0 to {most}",
                field="auto_top_up_monthly_cap",
                limit=most,
            )
        month = time.strftime("%Y-%m", time.gmtime(self.records.clock()))
        now = profile.cap_in(month, self.settings.auto_top_ups_per_month)
        return {"auto_cap": cap, "auto_cap_before": now, "auto_cap_month": month}

    def view(self, key_id: str) -> dict[str, Any]:
        profile = self.records.profile(key_id)
        standing = self.ledger.standing(key_id)
        month = time.strftime("%Y-%m", time.gmtime(self.records.clock()))
        default = self.settings.auto_top_ups_per_month
        return {
            "balance": whole_credits(standing.balance) if standing else None,
            "low_balance": whole_credits(standing.low_at) if standing else None,
            "auto_top_up": profile.auto_pack or None,
            "auto_top_up_monthly_cap": profile.cap_in(month, default),
            "auto_top_up_monthly_cap_next_month": default if profile.auto_cap is None else profile.auto_cap,
            "card_saved": bool(profile.card),
            "notify_url": profile.notify_url or None,
            "email": profile.email or None,
            "email_pending": profile.email_pending or None,
        }

    def payments(self, key_id: str) -> dict[str, Any]:
        balance = self.ledger.balance(key_id)
        return {
            "balance": whole_credits(balance) if balance is not None else None,
            "payments": [payment.to_dict() for payment in self.records.payments(key_id)],
        }


def _seconds_to_next_month(now: int) -> int:
    year, month = time.gmtime(now)[:2]
    first = time.strptime(f"{year + month // 12}-{month % 12 + 1:02d}-01", "%Y-%m-%d")
    return max(1, int(calendar.timegm(first)) - now)
