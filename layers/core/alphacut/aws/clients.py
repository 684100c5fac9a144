"""boto3 clients, one per service per process (Lambda reuses them across invocations).

Usage::

    clients.client("sqs").send_message(...)
    write_once(unretried("dynamodb").update_item, **request)  # an ADD the SDK must not send twice
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
from botocore.config import Config
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
def client(service: str, retried: bool = True) -> Any:  # boto3 ships no types: clients are Any
    """The process's client of ``service``; ``retried=False``: one the SDK never retries
    (``unretried``). One cache for both, so ``client.cache_clear()`` makes every client afresh."""
    if retried:
        return boto3.client(service)
    return boto3.client(service, config=Config(retries={"total_max_attempts": 1}))


# refusals that say the request was not applied: safe to send again, whatever it writes
NOT_APPLIED = frozenset({THROUGHPUT_EXCEEDED, "ThrottlingException", "RequestLimitExceeded"})
ONCE_TRIES = 5


def unretried(service: str) -> Any:
    """A client whose calls the SDK never sends twice: for a write that is not idempotent (an ADD),
    which a retry after a lost answer would apply again. ``write_once`` sends such a write again
    only when it was refused unapplied."""
    return client(service, retried=False)


def write_once(call: Any, **request: Any) -> Any:
    """``call(**request)`` (an unretried client's method), sent again after a refusal that says it
    was not applied (throughput, throttling: a growing jittered wait); any other error (a timeout,
    a 500: it may have landed) raises at once."""
    for attempt in range(ONCE_TRIES):
        try:
            return call(**request)
        except ClientError as error:
            if error.response["Error"]["Code"] not in NOT_APPLIED or attempt == ONCE_TRIES - 1:
                raise
            time.sleep(unprocessed_wait(attempt + 1))
    raise AssertionError("unreachable")


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
