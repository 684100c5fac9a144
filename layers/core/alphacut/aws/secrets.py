"""The stack's secrets (Secrets Manager), read once per process.

Usage::

    key = secret_bytes(settings.require("callback_secret_arn"))
"""

from __future__ import annotations

from functools import cache

from alphacut.aws.clients import client


@cache
def secret_bytes(secret_id: str) -> bytes:
    secret: str = client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
    return secret.encode()
