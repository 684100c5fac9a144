"""Signed callbacks: every callback body is signed with the stack's secret (HMAC-SHA256), as
payment providers sign webhooks, so a receiver can tell a callback from this stack from a
forged one, and an old one replayed.

Headers sent with each callback::

    X-Alphacut-Timestamp: 1795449600                   (unix seconds, when it was sent)
    X-Alphacut-Signature: v1=<hex of HMAC-SHA256(secret, "<timestamp>." + raw body)>

A receiver recomputes the HMAC over the raw body it received (before parsing it), compares in
constant time, and refuses a timestamp more than 5 minutes away from its clock. ``verify`` does
exactly that and is all a Python receiver needs.

A delivery that fails in a way a later try may mend (no connection, a 5xx, 408 or 429) raises
``CallbackFailed``: the callback queue brings it back with backoff (``alphacut.aws.callback_queue``:
45 s, doubling, about 6 h); the task never changes. One that no retry can mend (the URL now
resolves to a private, loopback or link-local address) raises ``CallbackRefused``, which is
dropped, not tried again.

Usage::

    headers = sign(secret, body)                        # the sender (the Notify function)
    verify(secret, body, request.headers)               # a receiver: True or False
    deliver(url, payload, secret, allowed_hosts=())     # the status, or CallbackFailed to retry
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from typing import Any

TIMESTAMP_HEADER = "X-Alphacut-Timestamp"
SIGNATURE_HEADER = "X-Alphacut-Signature"
VERSION = "v1"
TOLERANCE_SECONDS = 300


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: bytes, now: float | None = None) -> dict[str, str]:
    """The headers that go with ``body``."""
    timestamp = int(time.time() if now is None else now)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{VERSION}={signature(secret, timestamp, body)}",
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), "")


def verify(
    secret: bytes,
    body: bytes,
    headers: Mapping[str, str],
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True when ``body`` was signed with ``secret`` within ``tolerance`` seconds of ``now``."""
    raw_timestamp, raw_signature = _header(headers, TIMESTAMP_HEADER), _header(headers, SIGNATURE_HEADER)
    if not raw_timestamp.isdigit() or not raw_signature.startswith(f"{VERSION}="):
        return False
    timestamp = int(raw_timestamp)
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return hmac.compare_digest(expected, raw_signature.removeprefix(f"{VERSION}="))


# answers worth another try: the receiver is down, overloaded or slow
RETRYABLE_STATUSES = frozenset({408, 429})


class CallbackFailed(Exception):
    """The callback was not delivered, in a way a later attempt may mend (the callback queue
    brings it back)."""


class CallbackRefused(Exception):
    """The callback's address is refused (not public): a retry cannot deliver it."""


def deliver(
    url: str, payload: dict[str, Any], secret: bytes | None, allowed_hosts: Iterable[str] = ()
) -> int:
    """POST ``payload`` signed with ``secret`` to ``url`` once; its status, or ``CallbackFailed``."""
    from alphacut.errors import UrlFetchFailed, UrlNotAllowed
    from alphacut.urlfetch import post_json

    try:
        status = post_json(
            url,
            payload,
            allowed_hosts=allowed_hosts,
            headers_for=(lambda body: sign(secret, body)) if secret else None,
        )
    except UrlNotAllowed as error:
        raise CallbackRefused(f"{url}: {error}") from None
    except UrlFetchFailed as error:
        raise CallbackFailed(f"{url}: {error}") from None
    if status >= 500 or status in RETRYABLE_STATUSES:
        raise CallbackFailed(f"{url} answered {status}")
    return status
