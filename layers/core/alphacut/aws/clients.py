"""boto3 clients, one per service per process (Lambda reuses them across invocations).

Usage::

    clients.client("sqs").send_message(...)
    for item in batch_get(client("dynamodb"), "usage-table", keys): ...   # any number of keys
    # ServiceBusy (503, Retry-After) when DynamoDB leaves keys unread past the bound
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from functools import cache
from typing import Any

import boto3
from botocore.exceptions import ClientError

from alphacut.errors import ServiceBusy

BATCH_GET_KEYS = 100  # BatchGetItem's limit a request
# DynamoDB leaves keys unprocessed when a partition is over its rate and "strongly recommends" an
# exponential backoff before asking again: 50 ms doubling to 800 ms, each wait jittered between half
# and all of it (so callers left keys at once do not ask again at once), 7 asks at most (waits of
# 2.35 s at most in all, well inside an API call's 29 s), then a 503 with Retry-After
UNPROCESSED_FIRST_WAIT, UNPROCESSED_LONGEST_WAIT = 0.05, 0.8
UNPROCESSED_ASKS = 7
THROUGHPUT_EXCEEDED = "ProvisionedThroughputExceededException"


@cache
def client(service: str) -> Any:  # boto3 ships no types: clients are Any
    return boto3.client(service)


def batch_get(
    db: Any, table: str, keys: list[dict[str, Any]], consistent: bool = False
) -> Iterator[dict[str, Any]]:
    """The items of ``keys`` that exist (in no order), 100 keys a request, again for the keys
    DynamoDB left unprocessed after a growing, jittered wait; ServiceBusy past ``UNPROCESSED_ASKS``."""
    for start in range(0, len(keys), BATCH_GET_KEYS):
        request: dict[str, Any] = {
            table: {"Keys": keys[start : start + BATCH_GET_KEYS], "ConsistentRead": consistent}
        }
        for ask in range(UNPROCESSED_ASKS):
            if ask:
                time.sleep(unprocessed_wait(ask))
            answer = _batch_get_item(db, request)
            yield from answer.get("Responses", {}).get(table, [])
            request = answer.get("UnprocessedKeys", {})
            if not request:
                break
        else:
            left = len(request[table]["Keys"])
            raise ServiceBusy(
                f"DynamoDB left {left} key(s) of {table} unread after {UNPROCESSED_ASKS} asks",
                limit=UNPROCESSED_ASKS,
                retry_after=1,
            )


def _batch_get_item(db: Any, request: dict[str, Any]) -> dict[str, Any]:
    """One ask; a refusal for throughput ("none of the items can be processed", after the SDK's own
    retries) reads as every key left unprocessed."""
    try:
        return dict(db.batch_get_item(RequestItems=request))
    except ClientError as error:
        if error.response["Error"]["Code"] != THROUGHPUT_EXCEEDED:
            raise
        return {"UnprocessedKeys": request}


def unprocessed_wait(ask: int) -> float:
    """Seconds before ask ``ask`` (1, 2, ...): between half and all of a ceiling that doubles."""
    ceiling = min(UNPROCESSED_LONGEST_WAIT, UNPROCESSED_FIRST_WAIT * 2 ** (ask - 1))
    return random.uniform(ceiling / 2, ceiling)
