"""boto3 clients, one per service per process (Lambda reuses them across invocations).

Usage::

    clients.client("sqs").send_message(...)
    for item in batch_get(client("dynamodb"), "usage-table", keys): ...   # any number of keys
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import cache
from typing import Any

import boto3

BATCH_GET_KEYS = 100  # BatchGetItem's limit a request
UNPROCESSED_WAIT_SECONDS = 0.05  # before asking again for the keys DynamoDB left (it asks for a backoff)


@cache
def client(service: str) -> Any:  # boto3 ships no types: clients are Any
    return boto3.client(service)


def batch_get(
    db: Any, table: str, keys: list[dict[str, Any]], consistent: bool = False
) -> Iterator[dict[str, Any]]:
    """The items of ``keys`` that exist (in no order), 100 keys a request, again for the keys
    DynamoDB left unprocessed after a short wait."""
    for start in range(0, len(keys), BATCH_GET_KEYS):
        request: dict[str, Any] = {
            table: {"Keys": keys[start : start + BATCH_GET_KEYS], "ConsistentRead": consistent}
        }
        while request:
            answer = db.batch_get_item(RequestItems=request)
            yield from answer.get("Responses", {}).get(table, [])
            request = answer.get("UnprocessedKeys") or {}
            if request:
                time.sleep(UNPROCESSED_WAIT_SECONDS)
