"""Sign-up by email: ``ask`` sends a one-time link (rate-limited per source address, then per
mailbox; the whole service's asks are counted and raise an alarm past the operator's ceiling, never
a lock), the same answer whether or not the address has a key, so nobody learns who is a customer;
``confirm`` spends the link and makes a key on the credits plan with the operator's trial credits,
its value shown once. One key per mailbox unless the operator allows more; trial credits once per
mailbox, ever.

A mailbox is the address normalised (``signup_email``): Unicode NFKC, case-folded, a local part of
plain ASCII only (no look-alike letters of other scripts), and for providers that document it the
variants of one inbox mapped to one (gmail.com and googlemail.com ignore dots; the common hosted
providers' ``+tag`` sub-addresses). The mail goes to the address as typed (NFKC, lower case).

Usage::

    signups = Signups(settings, SignupRecords(table), keys, plans, ledger, mailbox)
    signups.ask("owner@shop.example", "https://api.example/prod", "203.0.113.9")  # the link by email
    signups.confirm("owner@shop.example", token)   # {"key_id", "api_key", "credits", ...}
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from alphacut.aws.billing.mailbox import Mailbox
from alphacut.aws.keys.signups import SignupRecords, email_hash
from alphacut.aws.ledger.credits import CreditLedger
from alphacut.billing.settings import BillingSettings
from alphacut.errors import BillingUnavailable, Conflict, InvalidOption, LinkInvalid, ServiceBusy
from alphacut.pricing import MILLI

if TYPE_CHECKING:
    from alphacut.aws.keys.store import KeyStore
    from alphacut.aws.ledger.plans import PlanCatalogue

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MAX_EMAIL = 254
MAX_LOCAL = 64
# RFC 5322's dot-atom: the characters a local part may hold unquoted, no leading, trailing or
# doubled dot (quoted local parts are refused: no provider hands them out)
ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]"
LOCAL_PART = re.compile(rf"^{ATEXT}+(?:\.{ATEXT}+)*$")
LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# what secrets.token_urlsafe(32) makes (43 characters), with room
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def checked_email(value: Any) -> str:
    """An address for the billing profile's notices (``alphacut.billing.purchases``)."""
    if not isinstance(value, str) or len(value) > MAX_EMAIL or not EMAIL.match(value.strip()):
        raise InvalidOption("must be an email address", field="email", limit=MAX_EMAIL)
    return value.strip().lower()


@dataclass(frozen=True)
class Provider:
    """What a mail provider documents its inboxes ignore: ``domain`` the one its aliases map to
    ("" : itself), dots in the local part, and everything from its sub-address separator on."""

    domain: str = ""
    ignores_dots: bool = False
    tag: str = "+"


GMAIL = Provider("gmail.com", ignores_dots=True)  # dots ignored, +tags; googlemail.com is gmail.com
ICLOUD = Provider("icloud.com")  # me.com and mac.com are the same iCloud mail account; +tags
PROTON = Provider("proton.me")  # one username on proton.me, protonmail.com/.ch and pm.me; +tags
MICROSOFT = Provider()  # Outlook.com, Hotmail, Live, MSN: +tags ("plus addressing"); dots count
PROVIDERS = {
    "gmail.com": GMAIL,
    "googlemail.com": GMAIL,
    "icloud.com": ICLOUD,
    "me.com": ICLOUD,
    "mac.com": ICLOUD,
    "proton.me": PROTON,
    "protonmail.com": PROTON,
    "protonmail.ch": PROTON,
    "pm.me": PROTON,
    "fastmail.com": Provider(),  # +tags
    "fastmail.fm": Provider(),
    "msn.com": MICROSOFT,
}
MICROSOFT_DOMAINS = re.compile(r"^(?:outlook|hotmail|live)\.(?:com|[a-z]{2}|co\.[a-z]{2}|com\.[a-z]{2})$")


@dataclass(frozen=True)
class SignupEmail:
    """``address``: where the mail goes (the address as typed, NFKC and lower case); ``mailbox``:
    the inbox it reaches, one for all its variants (the per-address limit, the keys per email and
    the trial count it)."""

    address: str
    mailbox: str

    @property
    def customer(self) -> str:
        """The key's customer name: the mailbox's SHA-256, never the address (docs/security.md)."""
        return f"signup:{email_hash(self.mailbox)[:16]}"


def _refused(why: str = "must be an email address") -> InvalidOption:
    return InvalidOption(why, field="email", limit=MAX_EMAIL)


def canonical_mailbox(local: str, domain: str) -> str:
    """The one inbox ``local@domain`` reaches at the providers that say so; others as they are."""
    provider = PROVIDERS.get(domain) or (MICROSOFT if MICROSOFT_DOMAINS.match(domain) else None)
    if provider is None:
        return f"{local}@{domain}"
    if provider.tag:
        local = local.split(provider.tag, 1)[0]
    if provider.ignores_dots:
        local = local.replace(".", "")
    if not local:
        raise _refused("names no mailbox: the part before @ is only a sub-address")
    return f"{local}@{provider.domain or domain}"


def signup_email(value: Any) -> SignupEmail:
    """The address a sign-up names, or InvalidOption naming ``email``: a string of at most 254
    characters; after NFKC (a fullwidth letter is the ASCII one it shows) and case folding, a
    local part of plain ASCII (a letter of another script that looks like a Latin one is refused,
    never mapped) and a domain of valid labels (an internationalised one as its ``xn--`` form)."""
    if not isinstance(value, str) or len(value) > MAX_EMAIL:
        raise _refused()
    text = unicodedata.normalize("NFKC", value.strip()).strip()
    if len(text) > MAX_EMAIL or text.count("@") != 1:
        raise _refused()
    local, domain = text.split("@")
    local, domain = local.lower(), domain.casefold()  # ASCII's case only: "ß" is refused, not "ss"
    if not local.isascii() or len(local) > MAX_LOCAL or not LOCAL_PART.match(local):
        raise _refused(
            "the part before @ must be plain ASCII: letters, digits and . ! # $ % & ' * + / = ? ^ _ ` { | } "
            "~ - (letters of other scripts that look like Latin ones are refused)"
        )
    domain = domain.removesuffix(".")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise _refused("the part after @ is not a domain name") from None
    labels = domain.split(".")
    if len(domain) > 253 or len(labels) < 2 or labels[-1].isdigit() or not all(map(LABEL.match, labels)):
        raise _refused("the part after @ is not a domain name")
    address = f"{local}@{domain}"
    if len(address) > MAX_EMAIL:
        raise _refused()
    return SignupEmail(address, canonical_mailbox(local, domain))


def checked_token(value: Any) -> str:
    if not isinstance(value, str) or not TOKEN.match(value):
        raise InvalidOption("must be the token from the sign-up link", field="token", limit=128)
    return value


def source_key(address: Any) -> str:
    """What the per-source limit counts an ask under: its IPv4 address, or its IPv6 address's /64
    (one subscriber's network: a client holds all of it), an IPv4-mapped one as IPv4; anything
    else (no address) ``unknown``."""
    try:
        ip = ipaddress.ip_address(str(address or "").strip())
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


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

    def ask(self, email_value: Any, base_url: str, source: str = "") -> dict[str, Any]:
        """Mail a one-time link to ``<base_url>/#signup=...`` (``base_url``: the deployment's own,
        never the request's Host); ``source``: the caller's address as API Gateway saw it."""
        email = signup_email(email_value)
        self.mailbox.check_ready(email.address)  # a 503 before anything is counted or stored
        counted_at = self.records.clock()
        self.records.count_ask(
            email.mailbox,
            source_key(source),
            per_source=self.settings.signups_per_source_per_hour,
            per_address=self.settings.signups_per_address_per_day,
            ceiling=self.settings.signups_per_hour,
            now=counted_at,
        )
        token = self.records.new_token()  # stored once mailed: a link SES refused is never kept
        link = f"{base_url.rstrip('/')}/#signup={quote(token)}&email={quote(email.address)}"
        minutes = self.settings.signup_link_seconds // 60
        try:
            self.mailbox.send(
                email.address,
                "Your alphacut API key",
                f"Follow this link within {minutes} minutes to make your API key (it is shown once):\n\n"
                f"{link}\n\nIf you did not ask for it, do nothing: no key is made.",
            )
        except ServiceBusy:  # SES throttled or paused: the ask never happened (its link is never mailed)
            self.records.give_back_ask(email.mailbox, source_key(source), counted_at)
            raise
        self.records.new_link(email.mailbox, self.settings.signup_link_seconds, token)
        return {"sent": True, "email": email.address, "link_minutes": minutes}

    def confirm(self, email_value: Any, token_value: Any) -> dict[str, Any]:
        email = signup_email(email_value)
        token = checked_token(token_value)
        hashed = self.records.use_link(email.mailbox, token)
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
                email.customer, self.settings.signup_plan, lambda key_id: [self.ledger.account_item(key_id)]
            )
        except Exception:
            self.records.give_back_key(hashed)
            raise
        key_id = made.key.key_id
        self.records.record_key(hashed, key_id)
        # trial credits once per mailbox, however many keys the operator lets it have
        trial = self.settings.trial_credits if keys_now == 1 else 0
        if trial:
            self.ledger.top_up(key_id, trial * MILLI, reference="trial", note="trial credits")
        return {"key_id": key_id, "api_key": made.value, "plan": self.settings.signup_plan, "credits": trial}
