"""The low-balance function's parts, made from the environment the template sets.

Usage (functions/low_balance/app.py)::

    notices = low_balance_notices()
"""

from __future__ import annotations

from alphacut.aws.billing.mailbox import Mailbox
from alphacut.aws.billing.payments import PaymentRecords
from alphacut.aws.callbacks.secrets import CallbackSecrets, WebhookSecrets
from alphacut.billing.low_balance import LowBalanceNotices
from alphacut.billing.settings import BillingSettings
from alphacut.billing.stripe_account import StripeAccount
from alphacut.callbacks import WebhookSigning
from alphacut.settings import ServiceSettings


def low_balance_notices() -> LowBalanceNotices:
    service, settings = ServiceSettings.from_env(), BillingSettings.from_env()

    keys = CallbackSecrets.from_settings(service) if service.key_callback_secret_arn else None
    webhooks = WebhookSecrets(keys) if keys is not None else None

    def signing_for(account_id: str) -> WebhookSigning | None:
        """The account's webhook signing (its own secret: readable whichever of its keys is live)."""
        return webhooks.signing(account_id) if webhooks is not None else None

    return LowBalanceNotices(
        settings,
        StripeAccount(settings),
        PaymentRecords(service.require("usage_table")),
        Mailbox(settings.mail_from, settings.mail_dir, configuration_set=settings.mail_configuration_set),
        signing_for,
        service.url_allowed_hosts,
    )
