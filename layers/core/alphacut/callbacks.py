"""Signed callbacks: every callback body is signed with the secret of the API key whose task it
is (HMAC-SHA256), as payment providers sign webhooks, so a receiver can tell a callback from this
stack for its own key from a forged one (another customer's key cannot make it), and an old one
replayed.

A key's callback secret (``cbk_…``) is derived from the stack's key master secret, which no
customer is ever given, the key id and the key's secret generation (``key_secret``): nothing to
store but the generation, and ``alphacut keys callback-secret --key ID`` hands a customer theirs
(``--rotate``: a new generation; the old secret keeps signing for a grace). The body carries the
key id (``key_id``) and so does a header, so a receiver with several keys knows which secret to
check with before it parses anything.

Headers sent with each callback::

    X-Alphacut-Timestamp: 1795449600                    (unix seconds, when it was sent)
    X-Alphacut-Key: k0123456789ab                        (the key whose task it is)
    X-Alphacut-Key-Signature: v2=<hex of HMAC-SHA256(key secret, "<timestamp>." + raw body)>[,v2=…]
    X-Alphacut-Signature: v1=<the same with the stack's one shared secret>   (the transition only)

``X-Alphacut-Key-Signature`` lists one signature per secret that signs the callback: the key's
current one; its previous one during a rotation's grace; and, until the stack's
``SharedCallbackSignatureUntil`` date, the key's secret as first handed out (``cbs_…``, derived
from the old shared secret, so a holder of that shared secret can derive it: see docs/security.md).
A receiver accepts a callback when one of them matches its secret. From that date the shared
signature and the ``cbs_`` one are no longer sent.

A receiver recomputes the HMAC over the raw body it received (before parsing it), compares in
constant time, and refuses a timestamp more than 5 minutes away from its clock. ``verify`` does
exactly that and is all a Python receiver needs; any malformed header is a plain False.

An account's own webhooks (``balance.low``: its money, not one key's task) are signed the same way
with the ACCOUNT's secret (``cba_…``, ``account_secret``: derived from the key master, the account
id and the account's generation, so it outlives any one key: every live key of the account with
scope ``billing`` or ``keys`` reads it, ``GET /v1/billing/webhook-secret``). They carry
``X-Alphacut-Account`` beside ``X-Alphacut-Key``, and ``verify`` checks them with that secret
unchanged. While the owner key (whose id is the account's) is live and the account has never rotated
its webhook secret, the owner key's own ``cbk_`` signature goes along too (``WebhookSigning``): a
receiver set up before account secrets keeps verifying (docs/security.md).

A delivery that fails in a way a later try may mend (no connection, a 5xx, 408 or 429) raises
``CallbackFailed``: the callback queue brings it back with backoff (``alphacut.aws.callbacks.queue``:
45 s, doubling, about 6 h); the task never changes. One that no retry can mend (the URL now
resolves to a private, loopback or link-local address, or names a port other than 80 and 443)
raises ``CallbackRefused``, which is dropped, not tried again.

Usage::

    secret = key_secret(key_master, "k0123456789ab", generation=0)   # what the customer is given (a str)
    headers = sign([secret.encode()], body, key_id="k0123456789ab")  # the sender (Notify)
    verify(secret.encode(), body, request.headers)      # a receiver: True or False
    verify(account_secret(key_master, "k0123456789ab").encode(), webhook_body, request.headers)
    deliver(url, payload, Signing(key_master, key_id), allowed_hosts=())   # the status, or CallbackFailed
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TIMESTAMP_HEADER = "X-Alphacut-Timestamp"
KEY_HEADER = "X-Alphacut-Key"
ACCOUNT_HEADER = "X-Alphacut-Account"
SIGNATURE_HEADER = "X-Alphacut-Key-Signature"
SHARED_SIGNATURE_HEADER = "X-Alphacut-Signature"
VERSION = "v2"
SHARED_VERSION = "v1"
TOLERANCE_SECONDS = 300
LEGACY_PREFIX = "cbs_"  # a key's first secret, derived from the old shared secret
SECRET_PREFIX = "cbk_"
ACCOUNT_SECRET_PREFIX = "cba_"  # an account's webhook secret (no key's: no key's revocation ends it)


def key_secret(key_master: bytes, key_id: str, generation: int = 0) -> str:
    """The callback secret of key ``key_id`` in ``generation``: HMAC-SHA256 of both under the
    stack's key master secret, which no customer is given (one key's secret tells nothing of
    another's, nor of the master, nor of its own next generation)."""
    message = f"callback:{key_id}:{generation}".encode()
    return SECRET_PREFIX + hmac.new(key_master, message, hashlib.sha256).hexdigest()


def account_secret(key_master: bytes, account_id: str, generation: int = 0) -> str:
    """The webhook secret of account ``account_id`` in ``generation``, derived as a key's is but in a
    message of its own (no key's secret, the owner key's included, is ever an account's)."""
    message = f"account-webhook:{account_id}:{generation}".encode()
    return ACCOUNT_SECRET_PREFIX + hmac.new(key_master, message, hashlib.sha256).hexdigest()


def legacy_key_secret(shared: bytes, key_id: str) -> str:
    """A key's secret as first handed out: derived from the old shared secret, which customers
    were given for ``v1`` (so any of them can derive it); sent only until the ``v1`` date."""
    return LEGACY_PREFIX + hmac.new(shared, f"callback:{key_id}".encode(), hashlib.sha256).hexdigest()


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(
    secrets: Sequence[bytes] | bytes,
    body: bytes,
    now: float | None = None,
    key_id: str = "",
    shared: bytes | None = None,
) -> dict[str, str]:
    """The headers that go with ``body``: a ``v2`` signature with each of the key's ``secrets``
    (its current one first), and the ``v1`` one with the ``shared`` secret while the transition
    lasts (None: over)."""
    timestamp = int(time.time() if now is None else now)
    keys = [secrets] if isinstance(secrets, bytes) else list(secrets)
    headers = {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: ",".join(f"{VERSION}={signature(key, timestamp, body)}" for key in keys),
    }
    if key_id:
        headers[KEY_HEADER] = key_id
    if shared is not None:
        headers[SHARED_SIGNATURE_HEADER] = f"{SHARED_VERSION}={signature(shared, timestamp, body)}"
    return headers


@dataclass(frozen=True)
class Signing:
    """How one key's callbacks are signed: the stack's ``key_master``, the key, its secret's
    ``generation`` (the previous one signs too until ``previous_until``), and the old ``shared``
    secret, whose ``v1`` signature and the key's ``cbs_`` one go along until ``shared_until``
    (unix seconds; 0 never)."""

    key_master: bytes
    key_id: str
    generation: int = 0
    previous_until: float = 0.0
    shared: bytes | None = None
    shared_until: float = 0.0

    def secrets(self, moment: float) -> list[bytes]:
        """The secrets that sign a callback sent at ``moment``, the current one first."""
        found = [key_secret(self.key_master, self.key_id, self.generation)]
        if self.generation > 0 and moment < self.previous_until:
            found.append(key_secret(self.key_master, self.key_id, self.generation - 1))
        if self.shared is not None and moment < self.shared_until:
            found.append(legacy_key_secret(self.shared, self.key_id))
        return [secret.encode() for secret in found]

    def headers(self, body: bytes, now: float | None = None) -> dict[str, str]:
        moment = time.time() if now is None else now
        shared = self.shared if moment < self.shared_until else None
        return sign(self.secrets(moment), body, moment, self.key_id, shared)


@dataclass(frozen=True)
class WebhookSigning:
    """How an account's webhooks are signed: its secret in ``generation`` (the previous one too
    until ``previous_until``), and, while ``owner`` is given (the owner key is live and the account
    never rotated its secret), the owner key's own signatures beside them, as they were before
    account secrets."""

    key_master: bytes
    account_id: str
    generation: int = 0
    previous_until: float = 0.0
    owner: Signing | None = None

    @property
    def key_id(self) -> str:
        """The id a webhook's body names (``key_id``): the account's, its owner key's id."""
        return self.account_id

    def secrets(self, moment: float) -> list[bytes]:
        found = [account_secret(self.key_master, self.account_id, self.generation)]
        if self.generation > 0 and moment < self.previous_until:
            found.append(account_secret(self.key_master, self.account_id, self.generation - 1))
        owner = self.owner.secrets(moment) if self.owner is not None else []
        return [secret.encode() for secret in found] + owner

    def headers(self, body: bytes, now: float | None = None) -> dict[str, str]:
        moment = time.time() if now is None else now
        owner = self.owner
        shared = owner.shared if owner is not None and moment < owner.shared_until else None
        return {
            **sign(self.secrets(moment), body, moment, self.account_id, shared),
            ACCOUNT_HEADER: self.account_id,
        }


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    return next((str(value) for key, value in headers.items() if str(key).lower() == wanted), "")


def verify(
    secret: bytes,
    body: bytes,
    headers: Mapping[str, str],
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True when ``body`` was signed with the key's ``secret`` within ``tolerance`` seconds of
    ``now``; False for anything else, a malformed or missing header included."""
    raw_timestamp, raw_signature = _header(headers, TIMESTAMP_HEADER), _header(headers, SIGNATURE_HEADER)
    if not (raw_timestamp.isascii() and raw_timestamp.isdigit() and len(raw_timestamp) <= 12):
        return False
    if not raw_signature.isascii() or len(raw_signature) > 1024:
        return False
    given = [part.strip().removeprefix(f"{VERSION}=") for part in raw_signature.split(",")]
    if any(value == part.strip() for value, part in zip(given, raw_signature.split(","))):
        return False  # an entry that is not v2=...
    timestamp = int(raw_timestamp)
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, value) for value in given)


# answers worth another try: the receiver is down, overloaded or slow
RETRYABLE_STATUSES = frozenset({408, 429})


class CallbackFailed(Exception):
    """The callback was not delivered, in a way a later attempt may mend (the callback queue
    brings it back)."""


class CallbackRefused(Exception):
    """The callback's address is refused (not public): a retry cannot deliver it."""


def deliver(
    url: str,
    payload: dict[str, Any],
    signing: Signing | WebhookSigning | None,
    allowed_hosts: Iterable[str] = (),
) -> int:
    """POST ``payload`` (with the key id in it) signed for its key to ``url`` once; its status, or
    ``CallbackFailed``."""
    from alphacut.errors import UrlFetchFailed, UrlNotAllowed
    from alphacut.urlfetch import origin, post_json

    if signing is not None:
        payload = {**payload, "key_id": signing.key_id}
    try:
        status = post_json(
            url,
            payload,
            allowed_hosts=allowed_hosts,
            headers_for=signing.headers if signing else None,
        )
    except UrlNotAllowed as error:
        raise CallbackRefused(f"{origin(url)}: {error}") from None
    except UrlFetchFailed as error:
        raise CallbackFailed(f"{origin(url)}: {error}") from None
    if status >= 500 or status in RETRYABLE_STATUSES:
        raise CallbackFailed(f"{origin(url)} answered {status}")
    return status
