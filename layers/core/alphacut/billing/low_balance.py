"""A balance that crossed its threshold (one queue message per crossing, ``alphacut.aws
.low_balance_queue``): the store is told by a webhook signed with its key's callback secret (as
task callbacks are) and by email, and with automatic top-up on the chosen pack is bought with the
saved card, off-session, under an idempotency key named after the crossing, so a message delivered
twice buys once. A declined card is told to the store and not tried again: the threshold stays
disarmed until a top-up lands (``alphacut.billing.stripe_events`` arms it again).

Usage::

    LowBalanceNotices(settings, account, records, mailbox, signing_for).handle(notice)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from alphacut.aws.low_balance_queue import LowBalance
from alphacut.aws.mailbox import Mailbox
from alphacut.aws.payments import PaymentRecords, Profile
from alphacut.billing.settings import BillingSettings
from alphacut.billing.stripe_account import StripeAccount
from alphacut.callbacks import CallbackFailed, CallbackRefused, Signing, deliver
from alphacut.errors import BillingUnavailable, PaymentDeclined
from alphacut.pricing import credits

logger = Logger(child=True)
EVENT = "balance.low"


class LowBalanceNotices:
    def __init__(
        self,
        settings: BillingSettings,
        account: StripeAccount,
        records: PaymentRecords,
        mailbox: Mailbox,
        signing_for: Callable[[str], Signing | None],
        allowed_hosts: tuple[str, ...] = (),
    ):
        self.settings, self.account, self.records, self.mailbox = settings, account, records, mailbox
        self.signing_for, self.allowed_hosts = signing_for, allowed_hosts

    def handle(self, notice: LowBalance) -> dict[str, Any]:
        """Buy (when asked) and tell; the notice sent, as a dict."""
        profile = self.records.profile(notice.key_id)
        body: dict[str, Any] = {
            "type": EVENT,
            "crossing": notice.crossing,
            "balance": credits(notice.balance),
            "low_balance": credits(notice.low_at),
            "auto_top_up": self._top_up(notice, profile),
        }
        self._tell(profile, body)
        return body

    def _top_up(self, notice: LowBalance, profile: Profile) -> dict[str, Any] | None:
        pack = self.settings.packs.get(profile.auto_pack)
        if pack is None or not profile.card or not profile.customer:
            return None
        amount = self.settings.price_of(pack)
        try:
            intent = self.account.intent_for(
                notice.key_id,
                pack,
                amount,
                customer=profile.customer,
                payment_method=profile.card,
                idempotency_key=f"low-balance-{notice.key_id}-{notice.crossing}",
                reason="auto",
            )
            self.records.recorded(
                notice.key_id, intent.id, pack, amount, self.settings.currency, reason="auto"
            )
            intent = self.account.confirm(intent.id, off_session=True)
        except (PaymentDeclined, BillingUnavailable) as error:  # told, never retried in a loop
            logger.warning("automatic top-up failed", extra={"key_id": notice.key_id, "error": str(error)})
            return {"pack": profile.auto_pack, "credits": pack, "state": "failed", "failure": error.message}
        state = "failed" if intent.status == "requires_payment_method" else intent.status
        return {"pack": profile.auto_pack, "credits": pack, "payment": intent.id, "state": state}

    def _tell(self, profile: Profile, body: dict[str, Any]) -> None:
        if profile.notify_url:
            try:
                deliver(profile.notify_url, body, self.signing_for(profile.key_id), self.allowed_hosts)
            except (CallbackFailed, CallbackRefused) as error:
                logger.warning(
                    "low-balance webhook not delivered", extra={"key_id": profile.key_id, "error": str(error)}
                )
        if profile.email:
            bought = body["auto_top_up"]
            balance, low = body["balance"], body["low_balance"]
            lines = [
                f"The balance of API key {profile.key_id} is {balance} credits, below the {low} you set."
            ]
            if bought and bought["state"] == "failed":
                failure = bought.get("failure", "")
                lines.append(f"The automatic top-up of {bought['credits']} credits failed: {failure}.")
            elif bought:
                payment = bought["payment"]
                lines.append(
                    f"{bought['credits']} credits are being bought with your saved card ({payment})."
                )
            self.mailbox.send(profile.email, "Your alphacut balance is low", "\n\n".join(lines))
