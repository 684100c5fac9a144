"""Sign-up by email: ``ask`` sends a one-time link (rate-limited per address and for the whole
service, the same answer whether or not the address has a key, so nobody learns who is a
customer); ``confirm`` spends the link and makes a key on the credits plan with the operator's
trial credits, its value shown once. One key per confirmed email unless the operator allows more;
trial credits once per email, ever.

Usage::

    signups = Signups(settings, SignupRecords(table), key_admin, ledger, mailbox)
    signups.ask("owner@shop.example", "https://api.example/prod")   # the link goes by email
    signups.confirm("owner@shop.example", token)   # {"key_id", "api_key", "credits", ...}
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from alphacut.aws.credits import CreditLedger
from alphacut.aws.mailbox import Mailbox
from alphacut.aws.signups import SignupRecords
from alphacut.billing.settings import BillingSettings
from alphacut.errors import BillingUnavailable, Conflict, InvalidOption, LinkInvalid
from alphacut.pricing import MILLI

if TYPE_CHECKING:
    from alphacut.aws.keystore import KeyStore
    from alphacut.aws.plans import PlanCatalogue

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MAX_EMAIL = 254


def checked_email(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_EMAIL or not EMAIL.match(value.strip()):
        raise InvalidOption("must be an email address", field="email", limit=MAX_EMAIL)
    return value.strip().lower()


class Signups:
    def __init__(
        self,
        settings: BillingSettings,
        records: SignupRecords,
        keys: KeyStore,
        plans: PlanCatalogue,
        ledger: CreditLedger,
        mailbox: Mailbox,
    ):
        self.settings, self.records, self.keys, self.plans = settings, records, keys, plans
        self.ledger, self.mailbox = ledger, mailbox

    def _check_plan(self) -> None:
        """The sign-up plan must be one of the stack's credit plans (read from the key table's plan
        catalogue, never from API Gateway's management API)."""
        plan = self.plans.read().get(self.settings.signup_plan)
        if plan is None or not plan.credit_based:
            raise BillingUnavailable(
                f"sign-up's plan {self.settings.signup_plan!r} is not a credits plan of this stack"
            )

    def ask(self, email_value: Any, base_url: str) -> dict[str, Any]:
        email = checked_email(email_value)
        self.records.count_ask(
            email, self.settings.signups_per_address_per_day, self.settings.signups_per_hour
        )
        token = self.records.new_link(email, self.settings.signup_link_seconds)
        link = f"{base_url.rstrip('/')}/#signup={quote(token)}&email={quote(email)}"
        minutes = self.settings.signup_link_seconds // 60
        self.mailbox.send(
            email,
            "Your alphacut API key",
            f"Follow this link within {minutes} minutes to make your API key (it is shown once):\n\n"
            f"{link}\n\nIf you did not ask for it, do nothing: no key is made.",
        )
        return {"sent": True, "email": email, "link_minutes": minutes}

    def confirm(self, email_value: Any, token: Any) -> dict[str, Any]:
        email = checked_email(email_value)
        if not isinstance(token, str) or not token:
            raise InvalidOption("the token from the link is missing", field="token")
        hashed = self.records.use_link(email, token)
        if hashed is None:
            raise LinkInvalid(
                "this sign-up link is unknown, used or expired: ask for a new one", field="token"
            )
        keys_now = self.records.claim_key(hashed, self.settings.keys_per_email)
        if keys_now is None:
            raise Conflict(
                f"this email has {self.settings.keys_per_email} key(s) already: use it, or ask the operator",
                field="email",
                limit=self.settings.keys_per_email,
            )
        try:
            self._check_plan()
            made = self.keys.create_one(
                email, self.settings.signup_plan, lambda key_id: [self.ledger.account_item(key_id)]
            )
        except Exception:
            self.records.give_back_key(hashed)
            raise
        key_id = made.key.key_id
        self.records.record_key(hashed, key_id)
        # trial credits once per email, however many keys the operator lets it have
        trial = self.settings.trial_credits if keys_now == 1 else 0
        if trial:
            self.ledger.top_up(key_id, trial * MILLI, reference="trial", note="trial credits")
        return {"key_id": key_id, "api_key": made.value, "plan": self.settings.signup_plan, "credits": trial}
