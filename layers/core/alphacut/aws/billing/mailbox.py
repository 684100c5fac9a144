"""Email to stores (sign-up links, low-balance notices): Amazon SES, or on the local stack a file
per message in a folder (``ALPHACUT_MAIL_DIR``, which ``make serve`` prints).

SES sends only from a verified sender and, while the account is in SES's sandbox (every new
account's), only to verified recipients; otherwise it refuses with ``MessageRejected``. So a caller
asks ``check_ready(to)`` before it counts or stores anything: a ``BillingUnavailable`` (503) that
says what the operator must do, read from SES (``GetEmailIdentity``, ``GetAccount``) at most once
per ``READY_SECONDS`` a container once it said yes (a no is asked again at the next sign-up).

Past the account's maximum send rate or daily quota SES refuses a message with
``ThrottlingException`` ("Maximum sending rate exceeded", "Daily message quota exceeded": AWS asks
for a wait "of up to 10 minutes"); a paused or suspended account with ``SendingPausedException`` /
``AccountSuspendedException``. ``send`` answers those ``ServiceBusy`` (503, Retry-After), so a
caller gives back what it counted and a queue brings its message back; the SDK does not retry them
(a quota refusal retried five times is the same refusal, seconds later).

Usage::

    mailbox = Mailbox("billing@store.example", "")
    mailbox.check_ready("owner@shop.example")       # BillingUnavailable when SES would refuse it;
                                                    # InvalidOption (email) once it bounced or complained
    mailbox.send("owner@shop.example", "Your key", "Follow ...")   # ServiceBusy while SES throttles
    Mailbox("", "/tmp/alphacut-mail").send(...)      # writes /tmp/alphacut-mail/<ns>-<id>.eml
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import parseaddr
from functools import cache, partial
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from alphacut.aws.clients import client
from alphacut.errors import BillingUnavailable, InvalidOption, ServiceBusy

READY_SECONDS = 300  # how long a container trusts SES's yes of an identity or production access
NOT_READY_SECONDS = 30  # and its no: SES's reads are 1 a second an account, whatever asks
THROTTLED = ("ThrottlingException", "Throttling", "TooManyRequestsException", "LimitExceededException")
PAUSED = ("SendingPausedException", "AccountSuspendedException")  # the operator must act
RATE_RETRY_SECONDS, QUOTA_RETRY_SECONDS, PAUSED_RETRY_SECONDS = 1, 600, 3600


def ses_busy(error: ClientError) -> ServiceBusy | None:
    """SES's refusal of a send for its rate, its quota or a paused account, as a 503 that says when
    to come back; None for any other error."""
    code, message = error.response["Error"].get("Code", ""), str(error.response["Error"].get("Message", ""))
    if code in PAUSED:
        return ServiceBusy(
            f"mail cannot be sent: the deployment's Amazon SES account is not sending ({code}); "
            "the operator looks at its reputation",
            retry_after=PAUSED_RETRY_SECONDS,
            field="email",
        )
    if code not in THROTTLED:
        return None
    daily = "daily" in message.lower()
    return ServiceBusy(
        f"mail cannot be sent now: Amazon SES's {'daily quota' if daily else 'sending rate'} is spent "
        "(nothing was counted): try again later",
        retry_after=QUOTA_RETRY_SECONDS if daily else RATE_RETRY_SECONDS,
        field="email",
    )


class Mailbox:
    def __init__(
        self,
        sender: str,
        folder: str = "",
        clock: Callable[[], float] = time.time,
        configuration_set: str = "",
    ):
        self.sender = sender or "alphacut@localhost"
        self.folder = folder
        self.configuration_set = configuration_set
        self.configured = bool(sender or folder)  # SES sends only from a verified sender
        self.clock = clock
        self._known: dict[str, tuple[float, bool]] = {}  # identity or "sandbox" -> (read at, yes)

    def check_ready(self, to: str) -> None:
        """``BillingUnavailable`` (503) unless SES would take a message from the sender to ``to``:
        the sender verified for sending, and ``to`` (or its domain) too while the account is in
        the sandbox. A mail folder is always ready."""
        if not self.configured:
            raise BillingUnavailable("mail is not set up on this deployment: the operator sets MailFrom")
        if self.folder:
            return
        if not self._verified(parseaddr(self.sender)[1] or self.sender):  # "Shop <billing@...>" too
            raise BillingUnavailable(
                f"mail cannot be sent: the sender {self.sender} (MailFrom) is not verified in Amazon SES; "
                "the operator verifies it (docs/api.md, Billing)"
            )
        if self._in_sandbox() and not self._verified(to):
            raise BillingUnavailable(
                "mail cannot be sent to this address: the deployment's Amazon SES account is in the sandbox, "
                "which mails verified addresses only; the operator asks AWS for production access"
            )
        if self._suppressed(to):
            raise InvalidOption(
                "mail to this address bounced or was marked as spam: Amazon SES sends it nothing more",
                field="email",
            )

    @staticmethod
    def _suppressed(to: str) -> bool:
        """Whether SES's suppression list holds ``to`` (a hard bounce or a complaint put it there:
        the configuration set's SuppressionOptions); read at each ask, as a bounce can come any time."""
        ses = client("sesv2")
        try:
            ses.get_suppressed_destination(EmailAddress=to)
        except ses.exceptions.NotFoundException:
            return False
        except (ClientError, BotoCoreError) as error:
            raise BillingUnavailable(
                f"Amazon SES could not be asked whether it mails {to}: {error}"
            ) from None
        return True

    def _remembered(self, name: str, read: Callable[[], bool], good: bool = True) -> bool:
        """What SES said of ``name``; a good answer kept ``READY_SECONDS``, a bad one
        ``NOT_READY_SECONDS`` (a sender verified meanwhile is used within half a minute, and a
        stranger's sign-ups cannot spend SES's 1 read a second)."""
        kept = self._known.get(name)
        if kept is not None and self.clock() - kept[0] < (
            READY_SECONDS if kept[1] == good else NOT_READY_SECONDS
        ):
            return kept[1]
        try:
            answer = read()
        except (ClientError, BotoCoreError) as error:
            raise BillingUnavailable(
                f"Amazon SES could not be asked whether mail can be sent: {error}"
            ) from None
        self._known[name] = (self.clock(), answer)
        return answer

    def _verified(self, address: str) -> bool:
        """The address, or its domain, verified for sending in SES."""
        identities = (address, address.rpartition("@")[2])
        return any(
            self._remembered(f"identity:{name}", partial(self._identity_ok, name)) for name in identities
        )

    @staticmethod
    def _identity_ok(name: str) -> bool:
        ses = client("sesv2")
        try:
            return bool(ses.get_email_identity(EmailIdentity=name).get("VerifiedForSendingStatus"))
        except ses.exceptions.NotFoundException:
            return False

    def _in_sandbox(self) -> bool:
        return self._remembered(
            "sandbox", lambda: not client("sesv2").get_account().get("ProductionAccessEnabled"), good=False
        )

    def send(self, to: str, subject: str, text: str) -> str:
        """Send one plain-text message; where it went (a file path, or SES's message id).
        BillingUnavailable (503) where no sender is set (MailFrom) and no folder: SES would refuse;
        ServiceBusy (503, Retry-After) while SES throttles or pauses the account's sending."""
        if not self.configured:
            raise BillingUnavailable("mail is not set up on this deployment: the operator sets MailFrom")
        if self.folder:
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = self.sender, to, subject
            message.set_content(text)
            path = Path(self.folder) / f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"  # names sort as sent
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(bytes(message))
            return str(path)
        try:
            configuration = {"ConfigurationSetName": self.configuration_set} if self.configuration_set else {}
            answer = _sender().send_email(
                FromEmailAddress=self.sender,
                Destination={"ToAddresses": [to]},
                Content={"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": text}}}},
                **configuration,
            )
        except ClientError as error:
            busy = ses_busy(error)
            if busy is None:
                raise
            raise busy from None
        return str(answer.get("MessageId", ""))


@cache
def _sender() -> Any:
    """SES's client for sends: one attempt each (its throttling is answered, not waited out)."""
    return boto3.client("sesv2", config=Config(retries={"total_max_attempts": 1}))
