"""A balance that crossed its threshold (one queue message per crossing, ``alphacut.aws
.low_balance_queue``): the store is told by a webhook signed with its account's webhook secret
(``cba_``, which any live key of the account with scope billing or keys reads: no key's
revocation takes it away) and by email, and with automatic top-up on the chosen pack is bought
with the saved card, off-session, under an idempotency key named after the crossing, so a message
delivered twice buys once. What the first attempt sends (pack, amount, currency, card, customer) is
noted on the crossing's item before it is sent, and a retry sends exactly that (Stripe refuses a
key reused with other parameters). A declined card is told to the store and not tried again: the
threshold stays disarmed until a top-up lands (``alphacut.billing.stripe_events`` arms it again),
so at most one top-up is in flight. A top-up that fails for good (Stripe refuses the request, or
never answers by the queue's last delivery) is told to the store too. Only a delivered, charged
call crosses the threshold (``alphacut.api.metering``), the threshold is below the pack
(``alphacut.billing.purchases``), and an account buys at most its monthly cap of top-ups (a slot
counted once per crossing; the store is told when it is spent). A crossing is told once, by mail
only to an address that confirmed it, within the key's mails of the day
(``alphacut.billing.notices``).

Usage::

    LowBalanceNotices(settings, account, records, mailbox, signing_for).handle(notice)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from alphacut.aws.billing.low_balance_queue import LowBalance
from alphacut.aws.billing.mailbox import Mailbox
from alphacut.aws.billing.payments import PaymentRecords, Profile, TopUpAttempt
from alphacut.billing.notices import NoticeAddresses
from alphacut.billing.settings import BillingSettings
from alphacut.billing.stripe_account import Intent, StripeAccount
from alphacut.callbacks import CallbackFailed, CallbackRefused, Signing, WebhookSigning, deliver
from alphacut.errors import BillingUnavailable, PaymentDeclined, PaymentRefused, ServiceBusy
from alphacut.pricing import credits

logger = Logger(child=True)
metrics = Metrics()  # one set per process: the function's log_metrics flushes it
EVENT = "balance.low"
# a retried top-up whose first attempt began longer ago than this is never sent to Stripe again:
# Stripe keeps an idempotency key at least 24 hours, and the queue's redrive may come later
IDEMPOTENCY_TRUSTED_SECONDS = 23 * 3600
# the low-balance queue's maxReceiveCount (template.yaml, LowBalanceQueue): its last delivery of a
# crossing tells the store of a top-up Stripe did not answer, rather than leave it to the DLQ
LAST_RECEIVE = 5


class LowBalanceNotices:
    def __init__(
        self,
        settings: BillingSettings,
        account: StripeAccount,
        records: PaymentRecords,
        mailbox: Mailbox,
        signing_for: Callable[[str], Signing | WebhookSigning | None],
        allowed_hosts: tuple[str, ...] = (),
    ):
        self.settings, self.account, self.records, self.mailbox = settings, account, records, mailbox
        self.signing_for, self.allowed_hosts = signing_for, allowed_hosts
        self.notices = NoticeAddresses(settings, records, mailbox)

    def handle(self, notice: LowBalance, last_try: bool = False) -> dict[str, Any]:
        """Buy (when asked) and tell, once per crossing (a message delivered twice buys and tells
        nothing more); the notice, as a dict. ``last_try``: the queue's last delivery of it (its
        dead-letter queue is next): a top-up Stripe did not answer is told to the store as unsure,
        not raised (raised, the store would never hear of it)."""
        profile = self.records.profile(notice.key_id)
        body: dict[str, Any] = {
            "type": EVENT,
            "account": notice.key_id,
            "crossing": notice.crossing,
            "balance": credits(notice.balance),
            "low_balance": credits(notice.low_at),
            "auto_top_up": self._top_up(notice, profile, last_try),
        }
        if self.records.first_time(notice.key_id, f"told#{notice.crossing}"):
            self._call_back(profile, body)
        self._mail(profile, notice.crossing, body)
        return body

    def _wanted(self, profile: Profile) -> TopUpAttempt | None:
        """What a first attempt would send now (the store's pack, card and customer)."""
        pack = self.settings.packs.get(profile.auto_pack)
        if pack is None or not profile.card or not profile.customer:
            return None
        currency = self.settings.currency
        price = self.settings.price_of(pack)
        return TopUpAttempt(profile.auto_pack, pack, price, currency, profile.card, profile.customer)

    def _top_up(self, notice: LowBalance, profile: Profile, last_try: bool) -> dict[str, Any] | None:
        now = self.records.clock()
        # the crossing's own month (a retry in the next month finds the same window and its note)
        month = time.strftime("%Y-%m", time.gmtime(notice.at or now))
        window, crossing = f"auto#{month}", f"crossing#{notice.crossing}"
        # a retry goes on with its first attempt whatever the store changed since (its pack, card,
        # or automatic top-up turned off): that attempt may have charged already
        wanted = self.records.counted_for(notice.key_id, window, crossing).attempt or self._wanted(profile)
        if wanted is None:
            return None
        cap = profile.cap_in(month, self.settings.auto_top_ups_per_month)
        # counted once per crossing: a message delivered twice finds its slot taken by itself, and
        # the PaymentIntent its first delivery made (Stripe's idempotency key would give it again)
        if not self.records.count(notice.key_id, window, cap, once_for=crossing):
            return {"pack": wanted.pack, "credits": wanted.credits, "state": "capped", "monthly_cap": cap}
        counted = self.records.counted_for(notice.key_id, window, crossing)
        shown = {"pack": wanted.pack, "credits": wanted.credits}
        if counted.payment:
            return {**shown, "payment": counted.payment, "state": "bought already"}
        if max(counted.age, now - notice.at if notice.at else 0.0) > IDEMPOTENCY_TRUSTED_SECONDS:
            # a crossing this old (a redrive), or an attempt that began long ago and noted no
            # PaymentIntent: Stripe may have charged it, and its idempotency key (kept at least
            # 24 h) may be gone; the service's own record says "maybe", so it never charges:
            # an operator looks (TopUpUnsure's alarm)
            return self._unsure(notice, shown, "its first attempt is too old to send again")
        # Stripe compares a reused idempotency key's parameters with the first request's and refuses
        # others: a retry sends exactly what the first attempt sent, noted before it was sent
        attempt = self.records.noted_attempt(notice.key_id, window, crossing, wanted)
        shown = {"pack": attempt.pack, "credits": attempt.credits}
        try:
            intent = self._buy(notice, attempt)
            self.records.note_counted(notice.key_id, window, crossing, intent.id)
        except PaymentDeclined as error:  # told, never retried in a loop
            logger.warning("automatic top-up declined", extra={"key_id": notice.key_id, "error": str(error)})
            if error.payment_id:
                self.records.record_failed(
                    notice.key_id,
                    error.payment_id,
                    attempt.credits,
                    attempt.amount,
                    attempt.currency,
                    error.message,
                    "auto",
                )
                self.records.note_counted(notice.key_id, window, crossing, error.payment_id)
            return {**shown, "state": "failed", "failure": error.message}
        except PaymentRefused as error:  # Stripe's own answer to this request: the same again
            logger.error("automatic top-up refused", extra={"key_id": notice.key_id, "error": str(error)})
            metrics.add_metric(name="TopUpUnsure", unit=MetricUnit.Count, value=1)
            return {**shown, "state": "failed", "failure": error.message}
        except BillingUnavailable as error:
            # Stripe did not answer: the queue brings the message back and the idempotency key makes
            # the same PaymentIntent; on its last delivery the store is told (an operator looks)
            if not last_try:
                raise
            return self._unsure(notice, shown, str(error))
        state = "failed" if intent.status == "requires_payment_method" else intent.status
        return {**shown, "payment": intent.id, "state": state}

    def _buy(self, notice: LowBalance, attempt: TopUpAttempt) -> Intent:
        intent = self.account.intent_for(
            notice.key_id,
            attempt.credits,
            attempt.amount,
            customer=attempt.customer,
            payment_method=attempt.card,
            off_session=True,
            idempotency_key=f"low-balance-{notice.key_id}-{notice.crossing}",
            reason="auto",
            currency=attempt.currency,
        )
        self.records.recorded(
            notice.key_id, intent.id, attempt.credits, attempt.amount, attempt.currency, reason="auto"
        )
        return intent

    def _unsure(self, notice: LowBalance, shown: dict[str, Any], why: str) -> dict[str, Any]:
        """A top-up the service cannot tell was charged, never sent again: logged and counted
        (TopUpUnsure's alarm: an operator looks in Stripe), and told to the store."""
        logger.error(
            "automatic top-up not retried",
            extra={"key_id": notice.key_id, "crossing": notice.crossing, "why": why},
        )
        metrics.add_metric(name="TopUpUnsure", unit=MetricUnit.Count, value=1)
        return {**shown, "state": "unsure", "failure": why}

    def _call_back(self, profile: Profile, body: dict[str, Any]) -> None:
        if profile.notify_url:
            try:
                deliver(profile.notify_url, body, self.signing_for(profile.key_id), self.allowed_hosts)
            except (CallbackFailed, CallbackRefused) as error:
                logger.warning(
                    "low-balance webhook not delivered", extra={"key_id": profile.key_id, "error": str(error)}
                )

    def _mail(self, profile: Profile, crossing: int, body: dict[str, Any]) -> None:
        """The crossing's mail, once: only to a confirmed address, within the key's mails of the day
        (alphacut.billing.notices; a message that comes back takes the slot it took before).
        ServiceBusy (SES throttling, or the account's sending paused) is raised: the queue brings
        the message back and the mail goes out later, where any other refusal is logged and counted."""
        mailed = f"mailed#{crossing}"
        if not profile.email or self.records.claimed(profile.key_id, mailed):
            return
        if self.notices.may_mail(profile.key_id, once_for=str(crossing)):
            try:
                self.mailbox.send(
                    profile.email, "Your alphacut balance is low", notice_text(profile.key_id, body)
                )
            except ServiceBusy:
                raise  # SES will take it later: the queue brings the message back
            except (ClientError, BotoCoreError, BillingUnavailable) as error:
                # a mail SES refused for itself is logged and counted, never retried by the queue
                # (it would fail the same way)
                logger.warning(
                    "low-balance mail not sent", extra={"key_id": profile.key_id, "error": str(error)}
                )
                metrics.add_metric(name="NoticeMailFailed", unit=MetricUnit.Count, value=1)
        self.records.first_time(profile.key_id, mailed)


def notice_text(key_id: str, body: dict[str, Any]) -> str:
    """The low-balance mail: the balance, and what became of the automatic top-up."""
    bought = body["auto_top_up"]
    balance, low = body["balance"], body["low_balance"]
    lines = [f"The balance of API key {key_id} is {balance} credits, below the {low} you set."]
    if bought and bought["state"] == "capped":
        lines.append(
            f"No automatic top-up was bought: this month's {bought['monthly_cap']} are spent "
            "(POST /v1/billing/settings auto_top_up_monthly_cap sets how many)."
        )
    elif bought and bought["state"] == "failed":
        lines.append(
            f"The automatic top-up of {bought['credits']} credits failed: {bought.get('failure', '')}."
        )
    elif bought and bought["state"] == "unsure":
        lines.append(
            f"The automatic top-up of {bought['credits']} credits could not be completed "
            "(the card processor did not answer) and will not be tried again for this "
            "crossing; we are checking whether your card was charged. Buy credits by hand "
            "if you need them now."
        )
    elif bought:
        lines.append(
            f"{bought['credits']} credits are being bought with your saved card ({bought['payment']})."
        )
    return "\n\n".join(lines)
