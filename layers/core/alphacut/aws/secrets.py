"""The stack's secrets (Secrets Manager), read once per process, except one without a value yet.

A secret the operator fills after the deploy (StripeKeys holds ``{}`` until then) read empty by a
warm container is read again a minute later, rather than kept empty for the container's life: the
service starts taking cards within a minute of the operator's ``put-secret-value``, and an
unconfigured deployment costs Secrets Manager one read a minute per container however it is called.

Usage::

    key = secret_bytes(settings.require("callback_secret_arn"))
"""

from __future__ import annotations

import threading
import time

from alphacut.aws.clients import client

EMPTY_SECRET_SECONDS = 60  # how long a secret read empty stays so before it is read again
EMPTY_VALUES = (b"", b"{}")
_read: dict[str, tuple[float, bytes]] = {}  # secret id -> (when read, value)
_lock = threading.Lock()
now = time.monotonic  # the clock (tests move it)


def secret_bytes(secret_id: str) -> bytes:
    with _lock:
        known = _read.get(secret_id)
        if known is not None and (
            known[1].strip() not in EMPTY_VALUES or now() - known[0] < EMPTY_SECRET_SECONDS
        ):
            return known[1]
    secret: str = client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
    with _lock:
        _read[secret_id] = (now(), secret.encode())
    return secret.encode()
