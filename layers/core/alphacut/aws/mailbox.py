"""Email to stores (sign-up links, low-balance notices): Amazon SES, or on the local stack a file
per message in a folder (``ALPHACUT_MAIL_DIR``, which ``make serve`` prints).

Usage::

    Mailbox("billing@store.example", "").send("owner@shop.example", "Your key", "Follow ...")
    Mailbox("", "/tmp/alphacut-mail").send(...)      # writes /tmp/alphacut-mail/<ns>-<id>.eml
"""

from __future__ import annotations

import time
import uuid
from email.message import EmailMessage
from pathlib import Path

from alphacut.aws.clients import client


class Mailbox:
    def __init__(self, sender: str, folder: str = ""):
        self.sender = sender or "alphacut@localhost"
        self.folder = folder
        self.configured = bool(sender or folder)  # SES sends only from a verified sender

    def send(self, to: str, subject: str, text: str) -> str:
        """Send one plain-text message; where it went (a file path, or SES's message id).
        BillingUnavailable (503) where no sender is set (MailFrom) and no folder: SES would refuse."""
        if not self.configured:
            from alphacut.errors import BillingUnavailable

            raise BillingUnavailable("mail is not set up on this deployment: the operator sets MailFrom")
        if self.folder:
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = self.sender, to, subject
            message.set_content(text)
            path = Path(self.folder) / f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"  # names sort as sent
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(bytes(message))
            return str(path)
        answer = client("sesv2").send_email(
            FromEmailAddress=self.sender,
            Destination={"ToAddresses": [to]},
            Content={"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": text}}}},
        )
        return str(answer.get("MessageId", ""))
