"""Result links that last as long as promised: a presigned S3 URL dies with the credentials that
signed it (a Lambda role's session: hours, not the 24 h some answers promise). A result link is
instead the API's own ``/v1/results/<token>``, the token naming the object and its expiry,
signed with the stack's secret (HMAC-SHA256); the route checks it and redirects to a URL
presigned there and then, for a few minutes.

Usage::

    signer = LinkSigner(secret)
    token = signer.token("results/2026-11-23/req/image.png", expires_at=1795536000)
    signer.open(token)          # the key; LinkInvalid (403) if forged, LinkExpired (410) if late
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable

from alphacut.errors import LinkExpired, LinkInvalid

ROUTE = "/v1/results"
# Only result objects may be linked, whatever a token says
LINKABLE_PREFIXES = ("results/", "tasks/")
MAX_TOKEN_LENGTH = 2048


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time):
        self.secret, self.clock = secret, clock

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.secret, b"result-link." + payload, hashlib.sha256).digest()

    def token(self, key: str, expires_at: int) -> str:
        payload = json.dumps({"k": key, "e": int(expires_at)}, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def open(self, token: str) -> str:
        """The object key a token names, if it is genuine and not expired."""
        try:
            encoded_payload, encoded_mac = token.split(".")
            if len(token) > MAX_TOKEN_LENGTH:
                raise ValueError("too long")
            payload, mac = _unb64(encoded_payload), _unb64(encoded_mac)
        except (ValueError, binascii.Error):
            raise LinkInvalid("is not a result link this service made", field="token") from None
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise LinkInvalid("is not a result link this service made", field="token")
        claims = json.loads(payload)
        if self.clock() > claims["e"]:
            expired = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["e"]))
            raise LinkExpired(f"expired at {expired}: ask for the result again", field="token")
        if not str(claims["k"]).startswith(LINKABLE_PREFIXES):
            raise LinkInvalid("does not name a result", field="token")
        return str(claims["k"])
