"""Signed callbacks: every callback body is signed with the secret of the API key whose task it
is (HMAC-SHA256), as payment providers sign webhooks, so a receiver can tell a callback from this
stack for its own key from a forged one (another customer's key cannot make it), and an old one
replayed.

A key's callback secret is derived from the stack's master secret and the key id
(``key_secret``): nothing to store, and ``alphacut keys callback-secret --key ID`` hands a customer
theirs. The body carries the key id (``key_id``) and so does a header, so a receiver with several
keys knows which secret to check with before it parses anything.

Headers sent with each callback::

    X-Alphacut-Timestamp: 1795449600                    (unix seconds, when it was sent)
    X-Alphacut-Key: k0123456789ab                        (the key whose task it is)
    X-Alphacut-Key-Signature: v2=<hex of HMAC-SHA256(key secret, "<timestamp>." + raw body)>
    X-Alphacut-Signature: v1=<the same with the stack's one shared secret>   (the transition only)

Until the stack's ``SharedCallbackSignatureUntil`` date the old shared-secret signature goes
along, so receivers that check it keep working; from that day it is no longer sent and they refuse
every callback until they check ``v2`` with their key's secret.

A receiver recomputes the HMAC over the raw body it received (before parsing it), compares in
constant time, and refuses a timestamp more than 5 minutes away from its clock. ``verify`` does
exactly that and is all a Python receiver needs; any malformed header is a plain False.

A delivery that fails in a way a later try may mend (no connection, a 5xx, 408 or 429) raises
``CallbackFailed``: the callback queue brings it back with backoff (``alphacut.aws.callback_queue``:
45 s, doubling, about 6 h); the task never changes. One that no retry can mend (the URL now
resolves to a private, loopback or link-local address, or names a port other than 80 and 443)
raises ``CallbackRefused``, which is dropped, not tried again.

Usage::

    secret = key_secret(master, "k0123456789ab")       # what the customer is given (a str)
    headers = sign(secret.encode(), body, key_id="k0123456789ab")   # the sender (Notify)
    verify(secret.encode(), body, request.headers)      # a receiver: True or False
    deliver(url, payload, Signing(master, key_id), allowed_hosts=())   # the status, or CallbackFailed
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

TIMESTAMP_HEADER = "X-Alphacut-Timestamp"
KEY_HEADER = "X-Alphacut-Key"
SIGNATURE_HEADER = "X-Alphacut-Key-Signature"
SHARED_SIGNATURE_HEADER = "X-Alphacut-Signature"
VERSION = "v2"
SHARED_VERSION = "v1"
TOLERANCE_SECONDS = 300
SECRET_PREFIX = "cbs_"


def key_secret(master: bytes, key_id: str) -> str:
    """The callback secret of key ``key_id``: HMAC-SHA256 of the id under the stack's master secret
    (one key's secret tells nothing of another's, nor of the master)."""
    return SECRET_PREFIX + hmac.new(master, f"callback:{key_id}".encode(), hashlib.sha256).hexdigest()


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(
    secret: bytes, body: bytes, now: float | None = None, key_id: str = "", shared: bytes | None = None
) -> dict[str, str]:
    """The headers that go with ``body``: its ``v2`` signature with the key's ``secret``, and the
    ``v1`` one with the ``shared`` secret while the transition lasts (None: over)."""
    timestamp = int(time.time() if now is None else now)
    headers = {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{VERSION}={signature(secret, timestamp, body)}",
    }
    if key_id:
        headers[KEY_HEADER] = key_id
    if shared is not None:
        headers[SHARED_SIGNATURE_HEADER] = f"{SHARED_VERSION}={signature(shared, timestamp, body)}"
    return headers


@dataclass(frozen=True)
class Signing:
    """How one key's callbacks are signed: the stack's ``master`` secret, the key, and whether the
    shared-secret signature still goes along (``shared_until``: unix seconds, 0 never)."""

    master: bytes
    key_id: str
    shared_until: float = 0.0

    def headers(self, body: bytes, now: float | None = None) -> dict[str, str]:
        moment = time.time() if now is None else now
        shared = self.master if moment < self.shared_until else None
        return sign(key_secret(self.master, self.key_id).encode(), body, moment, self.key_id, shared)


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
    given = raw_signature.removeprefix(f"{VERSION}=")
    if not (raw_timestamp.isascii() and raw_timestamp.isdigit() and len(raw_timestamp) <= 12):
        return False
    if given == raw_signature or not given.isascii():
        return False
    timestamp = int(raw_timestamp)
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), given)


# answers worth another try: the receiver is down, overloaded or slow
RETRYABLE_STATUSES = frozenset({408, 429})


class CallbackFailed(Exception):
    """The callback was not delivered, in a way a later attempt may mend (the callback queue
    brings it back)."""


class CallbackRefused(Exception):
    """The callback's address is refused (not public): a retry cannot deliver it."""


def deliver(
    url: str, payload: dict[str, Any], signing: Signing | None, allowed_hosts: Iterable[str] = ()
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
