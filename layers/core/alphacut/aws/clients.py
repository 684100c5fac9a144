"""boto3 clients, one per service per process (Lambda reuses them across invocations).

Usage::

    clients.client("sqs").send_message(...)
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3


@cache
def client(service: str) -> Any:  # boto3 ships no types: clients are Any
    return boto3.client(service)
