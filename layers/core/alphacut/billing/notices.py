"""Where a store's notices go, only once the address said yes: an email set for a key's notices
gets a confirmation link first (``<base>/#notices=<token>``, which the page posts to
``/v1/billing/notices/confirm``) and receives nothing else until it is confirmed; a key's mails are
at most ``notices_per_day`` a UTC day, confirmations included, so a leaked key cannot make the
service mail any address without limit.

Items (the usage table): ``pk = "notices#<token hash>"``, ``sk = "link"``: ``key_id``, ``email``,
``expires_at`` (TTL), ``used_at``; the profile's ``email`` (confirmed) and ``email_pending``; the
key's mails of a day counted on ``billing#<key id>`` / ``mails#<day>``.

Usage::

    notices = NoticeAddresses(settings, PaymentRecords(table), mailbox)
    notices.ask("k123", "owner@shop.example", "https://api.example/prod")   # the link goes by mail
    notices.confirm(token)                    # {"key_id", "email", "confirmed": True}
    notices.may_mail("k123")                  # one of today's mails, or False
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any
from urllib.parse import quote

from alphacut.aws.billing.mailbox import Mailbox
from alphacut.aws.billing.payments import PaymentRecords
from alphacut.aws.clients import client
from alphacut.billing.settings import BillingSettings
from alphacut.billing.signup import checked_email
from alphacut.errors import InvalidOption, LinkInvalid, NoticesLimited

LINK_SECONDS = 86400


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class NoticeAddresses:
    def __init__(self, settings: BillingSettings, records: PaymentRecords, mailbox: Mailbox):
        self.settings, self.records, self.mailbox = settings, records, mailbox

    @property
    def _db(self) -> Any:
        return client("dynamodb")

    def refuse_if_spent(self, key_id: str, email_value: Any) -> None:
        """``NoticesLimited`` where a new address could not be mailed its link today, and
        ``BillingUnavailable`` where SES would refuse to mail it: asked before any other setting
        changes, so a refused request changes nothing."""
        if email_value is None or email_value == "" or self.records.profile(key_id).email == email_value:
            return
        self.mailbox.check_ready(str(email_value))  # 503 while SES would refuse its link: nothing changes
        day = time.strftime("%Y-%m-%d", time.gmtime(self.records.clock()))
        if self.records.counted(key_id, f"mails#{day}") >= self.settings.notices_per_day:
            raise self._limited()

    def _limited(self) -> NoticesLimited:
        return NoticesLimited(
            f"this key's {self.settings.notices_per_day} mails for today are sent: set it tomorrow",
            retry_after=86400 - int(self.records.clock()) % 86400,
            limit=self.settings.notices_per_day,
        )

    def may_mail(self, key_id: str, once_for: str = "") -> bool:
        """One of the key's mails today (confirmation or notice), if any are left; ``once_for``: a
        name (a crossing) counted once, so its message coming back takes the slot it took before."""
        day = time.strftime("%Y-%m-%d", time.gmtime(self.records.clock()))
        return self.records.count(
            key_id,
            f"mails#{day}",
            self.settings.notices_per_day,
            once_for=f"crossing#{once_for}" if once_for else "",
        )

    def ask(self, key_id: str, email_value: Any, base_url: str) -> dict[str, Any]:
        """Mail a confirmation link to a new notice address (its notices wait for the yes); ``""`` or
        None clears the address. The address already confirmed is left as it is."""
        if email_value is None or email_value == "":
            self.records.save_profile(key_id, email="", email_pending="")
            return {"email": None, "email_pending": None}
        email = checked_email(email_value)
        profile = self.records.profile(key_id)
        if email == profile.email:
            return {"email": email, "email_pending": None}
        self.mailbox.check_ready(email)  # before a mail is counted or a link stored
        if not self.may_mail(key_id):
            raise self._limited()
        token = secrets.token_urlsafe(32)
        self._db.put_item(
            TableName=self.records.table_name,
            Item={
                "pk": {"S": f"notices#{_hash(token)}"},
                "sk": {"S": "link"},
                "key_id": {"S": key_id},
                "email": {"S": email},
                "expires_at": {"N": str(int(self.records.clock()) + LINK_SECONDS)},
            },
        )
        self.records.save_profile(key_id, email_pending=email)
        link = f"{base_url.rstrip('/')}/#notices={quote(token)}"
        self.mailbox.send(
            email,
            "Confirm where your alphacut notices go",
            f"Someone set this address for the notices of API key {key_id} (a low balance, a top-up). "
            f"Follow this link within a day to receive them:\n\n{link}\n\n"
            "If you did not ask for it, do nothing: nothing more is sent here.",
        )
        return {"email": profile.email or None, "email_pending": email}

    def confirm(self, token: Any) -> dict[str, Any]:
        """Spend the link: its address becomes the key's notice address, if it is still the one
        waiting (an address set again, or cleared, leaves older links dead)."""
        if not isinstance(token, str) or not 16 <= len(token) <= 128 or not token.isascii():
            raise InvalidOption("the token from the link is missing or malformed", field="token")
        now = int(self.records.clock())
        try:
            answer = self._db.update_item(
                TableName=self.records.table_name,
                Key={"pk": {"S": f"notices#{_hash(token)}"}, "sk": {"S": "link"}},
                UpdateExpression="SET used_at = :now",
                ConditionExpression="expires_at > :now AND attribute_not_exists(used_at)",
                ExpressionAttributeValues={":now": {"N": str(now)}},
                ReturnValues="ALL_NEW",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            raise LinkInvalid(
                "this link is unknown, used or expired: set the address again", field="token"
            ) from None
        key_id, email = answer["Attributes"]["key_id"]["S"], answer["Attributes"]["email"]["S"]
        if self.records.profile(key_id).email_pending != email:
            # the store set another address (or none) since this link was mailed: the link died then
            raise LinkInvalid(
                "this address is no longer the one waiting for this key's notices: set it again",
                field="token",
            )
        self.records.save_profile(key_id, email=email, email_pending="")
        return {"key_id": key_id, "email": email, "confirmed": True}
