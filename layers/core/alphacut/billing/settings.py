"""What an operator decides about payments: the price of a credit, the packs, the amounts a card may
buy, the trial credits and the sign-up limits, and the Stripe keys (from the environment, or the
stack's secret in Secrets Manager).

Usage::

    settings = BillingSettings.from_env()
    settings.price_of(40)            # 800: minor units of settings.currency (40 x 0.20 USD)
    settings.credits_asked({"pack": "store"})   # 500, or InvalidOption naming the field
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from typing import Any

from alphacut.errors import BillingUnavailable, InvalidOption

STRIPE_API = "https://api.stripe.com"
STRIPE_JS = "https://js.stripe.com/v3/"
# Stripe refuses a charge under 0.50 in the major currencies (its "minimum charge amount")
STRIPE_MINIMUM_MINOR_UNITS = 50
# the currencies priced here: two decimals (prices count hundredths) and a minimum of 0.50 at most
CURRENCIES = ("usd", "eur", "gbp", "cad", "aud", "nzd", "chf", "sgd")


def parse_packs(text: str) -> dict[str, int]:
    """``"starter=100,store=500"`` -> {"starter": 100, "store": 500}; a bad entry names itself."""
    packs: dict[str, int] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, _, amount = entry.partition("=")
        if not name.strip().isidentifier() or not amount.strip().isdigit() or int(amount) <= 0:
            raise ValueError(f"CREDIT_PACKS entry {entry!r}: write name=credits, e.g. store=500")
        packs[name.strip()] = int(amount)
    return packs


def _currency(code: str) -> str:
    code = code.strip().lower()
    if code not in CURRENCIES:
        raise ValueError(
            f"BILLING_CURRENCY must be one of {', '.join(CURRENCIES)} (two decimals), not {code!r}"
        )
    return code


@dataclass(frozen=True)
class StripeKeys:
    secret_key: str = ""
    webhook_secret: str = ""
    publishable_key: str = ""


@dataclass(frozen=True)
class BillingSettings:
    price_per_credit: Decimal = Decimal("0.20")
    currency: str = "usd"
    packs: dict[str, int] = field(default_factory=lambda: {"starter": 100, "store": 500, "volume": 2000})
    min_credits: int = 10
    max_credits: int = 100_000
    # automatic top-ups of one account a calendar month, unless its store sets fewer (or more, up
    # to ``max_auto_top_ups``, from the next month); PaymentIntents and SetupIntents a key may ask
    # for an hour (card testing through the service costs a stranger a handful an hour)
    auto_top_ups_per_month: int = 3
    max_auto_top_ups: int = 31
    payment_asks_per_hour: int = 5
    notices_per_day: int = 3  # mails a key's notices may cost a UTC day, confirmations included
    trial_credits: int = 0
    keys_per_email: int = 1
    # the whole service's sign-up asks an hour past which SignupCeilingReached is emitted (an
    # alarm, never a lock: a stranger's flood must not shut sign-up for real stores)
    signups_per_hour: int = 60
    signups_per_source_per_hour: int = 5  # one source address (an IPv6 /64) an hour
    signups_per_address_per_day: int = 3  # one mailbox a UTC day
    signup_link_seconds: int = 3600
    signup_plan: str = "credits"
    # where mailed sign-up links point: PUBLIC_BASE_URL; else the local stack's own address
    # (ALPHACUT_LOCAL_BASE_URL); else the API's own URL in ``region`` (never the request's Host)
    public_base_url: str = ""
    local_base_url: str = ""
    region: str = ""
    stripe_api_base: str = STRIPE_API
    stripe_js_url: str = STRIPE_JS
    stripe_secret_arn: str = ""  # {"secret_key", "webhook_secret", "publishable_key"} in Secrets Manager
    environment_keys: StripeKeys = StripeKeys()
    mail_from: str = ""
    mail_dir: str = ""  # the local stack writes each message here instead of sending it by SES
    mail_configuration_set: str = ""  # SES's configuration set: reputation metrics, bounce suppression
    low_balance_queue_url: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BillingSettings:
        env = os.environ if environ is None else environ
        defaults = cls()

        def number(name: str, default: int) -> int:
            value = env.get(name, "")
            if value and not value.isdigit():
                raise ValueError(f"{name} must be a whole number, not {value!r}")
            return int(value) if value else default

        return cls(
            price_per_credit=Decimal(env.get("PRICE_PER_CREDIT") or defaults.price_per_credit),
            currency=_currency(env.get("BILLING_CURRENCY") or defaults.currency),
            packs=parse_packs(env["CREDIT_PACKS"]) if env.get("CREDIT_PACKS") else defaults.packs,
            min_credits=number("PURCHASE_MIN_CREDITS", defaults.min_credits),
            max_credits=number("PURCHASE_MAX_CREDITS", defaults.max_credits),
            auto_top_ups_per_month=number("AUTO_TOP_UPS_PER_MONTH", defaults.auto_top_ups_per_month),
            max_auto_top_ups=number("MAX_AUTO_TOP_UPS_PER_MONTH", defaults.max_auto_top_ups),
            payment_asks_per_hour=number("PAYMENT_ASKS_PER_HOUR", defaults.payment_asks_per_hour),
            notices_per_day=number("NOTICES_PER_DAY", defaults.notices_per_day),
            trial_credits=number("TRIAL_CREDITS", defaults.trial_credits),
            keys_per_email=number("SIGNUP_KEYS_PER_EMAIL", defaults.keys_per_email),
            signups_per_hour=number("SIGNUPS_PER_HOUR", defaults.signups_per_hour),
            signups_per_source_per_hour=number(
                "SIGNUPS_PER_SOURCE_PER_HOUR", defaults.signups_per_source_per_hour
            ),
            signups_per_address_per_day=number(
                "SIGNUPS_PER_ADDRESS_PER_DAY", defaults.signups_per_address_per_day
            ),
            signup_link_seconds=number("SIGNUP_LINK_SECONDS", defaults.signup_link_seconds),
            signup_plan=env.get("SIGNUP_PLAN") or defaults.signup_plan,
            public_base_url=env.get("PUBLIC_BASE_URL", ""),
            local_base_url=env.get("ALPHACUT_LOCAL_BASE_URL", ""),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION", ""),
            stripe_api_base=env.get("ALPHACUT_STRIPE_API_BASE") or STRIPE_API,
            stripe_js_url=env.get("ALPHACUT_STRIPE_JS_URL") or STRIPE_JS,
            stripe_secret_arn=env.get("STRIPE_SECRET_ARN", ""),
            environment_keys=StripeKeys(
                env.get("ALPHACUT_STRIPE_SECRET_KEY", ""),
                env.get("ALPHACUT_STRIPE_WEBHOOK_SECRET", ""),
                env.get("ALPHACUT_STRIPE_PUBLISHABLE_KEY", ""),
            ),
            mail_from=env.get("MAIL_FROM", ""),
            mail_dir=env.get("ALPHACUT_MAIL_DIR", ""),
            mail_configuration_set=env.get("MAIL_CONFIGURATION_SET", ""),
            low_balance_queue_url=env.get("LOW_BALANCE_QUEUE_URL", ""),
        )

    @cached_property
    def stripe_keys(self) -> StripeKeys:
        """The environment's keys where set (the local stack, tests), else the stack's secret, read
        once per container; BillingUnavailable when neither holds a secret key."""
        keys = self.environment_keys
        if not keys.secret_key and self.stripe_secret_arn:
            from alphacut.aws.secrets import secret_bytes

            try:  # until the operator puts the keys there, the secret holds no JSON object
                stored: dict[str, Any] = json.loads(secret_bytes(self.stripe_secret_arn) or b"{}")
            except ValueError:
                stored = {}
            stored = stored if isinstance(stored, dict) else {}
            keys = StripeKeys(
                stored.get("secret_key", ""),
                stored.get("webhook_secret", ""),
                stored.get("publishable_key", ""),
            )
        if not keys.secret_key:
            raise BillingUnavailable(
                "card payments are not set up on this deployment: the operator puts the Stripe keys "
                "in the stack's StripeKeys secret (docs/api.md, Billing)"
            )
        return keys

    def price_of(self, credits: int) -> int:
        """What ``credits`` cost, in the currency's minor units (cents), rounded half up."""
        return int((self.price_per_credit * credits * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))

    @property
    def smallest_purchase(self) -> int:
        """The fewest credits a card may buy: the operator's minimum, raised to Stripe's minimum charge."""
        fewest = self.min_credits
        while self.price_of(fewest) < STRIPE_MINIMUM_MINOR_UNITS:
            fewest += 1
        return fewest

    def credits_asked(self, body: Mapping[str, Any]) -> int:
        """The credits a purchase asks for: ``credits`` (a whole number in the operator's range) or
        ``pack`` (one of the operator's packs); anything else is InvalidOption naming the field."""
        if "pack" in body and body["pack"] not in (None, ""):
            pack = body["pack"]
            if not isinstance(pack, str) or pack not in self.packs:
                raise InvalidOption(f"must be one of {', '.join(sorted(self.packs))}", field="pack")
            return self.packs[str(pack)]
        asked = body.get("credits")
        if isinstance(asked, bool) or not isinstance(asked, int):
            raise InvalidOption("give a whole number of credits, or a pack", field="credits")
        fewest = self.smallest_purchase
        if not fewest <= asked <= self.max_credits:
            raise InvalidOption(
                f"must be from {fewest} to {self.max_credits} credits",
                field="credits",
                limit=self.max_credits if asked > self.max_credits else fewest,
            )
        return asked
