"""DynamoDB's transaction conflicts, which moto never has (it applies each request at once): while
a TransactWriteItems runs, its items are taken, and

- another TransactWriteItems that names one of them is cancelled
  (``TransactionCanceledException``, reason ``TransactionConflict`` for that item);
- a PutItem, UpdateItem or DeleteItem of one of them (or a BatchWriteItem's write) is refused
  ``TransactionConflictException``, which the SDK does not retry;

as DynamoDB's guide describes transaction conflict handling. And a TransactWriteItems carrying a
``ClientRequestToken`` is idempotent (``TransactionTokens``): the same token again within 10
minutes of a success answers success and writes nothing (the SDK's retry of a transaction whose
answer was lost); the same token with other items is ``IdempotentParameterMismatchException``;
the same token while the first is still under way is ``TransactionInProgressException``, which the
SDK retries. A replay is not metered here (AWS bills it as a read of its items).
Here each transaction runs for
``seconds`` (how long one takes on DynamoDB: an assumption, 20 ms by default, which
benchmarks/bench_money.py varies) before its writes are applied, so two calls of a busy key meet
as they would on AWS. ``conflicts`` counts the refusals.

Usage::

    rule = TransactionConflicts(seconds=0.02)
    rule.apply() ... rule.conflicts ... rule.restore()
    tokens = TransactionTokens(); tokens.apply() ... tokens.replays ... tokens.restore()
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from alphacut_dev.local.dynamodb_capacity import item_key
from alphacut_dev.local.patches import MotoPatches

TRANSACTION_SECONDS = 0.02
TOKEN_SECONDS = 600  # a ClientRequestToken holds 10 minutes after the first request completes
SINGLE_WRITES = ("put_item", "update_item", "delete_item", "batch_write_item")

ItemId = tuple[str, str]  # table, key as JSON


class TransactionConflicts(MotoPatches):
    def __init__(self, seconds: float = TRANSACTION_SECONDS):
        super().__init__()
        self.seconds = seconds
        self.conflicts = 0  # transactions cancelled and single writes refused
        self.transactions = 0
        self._taken: dict[ItemId, int] = {}  # item -> the transaction holding it
        self._lock = threading.Lock()
        self._serial = 0

    def apply(self) -> None:
        from moto.dynamodb.responses import DynamoHandler

        self._patch(
            DynamoHandler, "transact_write_items", self._transaction(DynamoHandler.transact_write_items)
        )
        for name in SINGLE_WRITES:
            self._patch(DynamoHandler, name, self._single_write(name, getattr(DynamoHandler, name)))

    def _transaction(self, original: Any) -> Any:
        rule = self

        def transaction(handler: Any) -> Any:
            items = [
                _item_id(handler.dynamodb_backend, entry) for entry in handler.body.get("TransactItems", [])
            ]
            with rule._lock:
                rule.transactions += 1
                busy = [item in rule._taken for item in items]
                if any(busy):
                    rule.conflicts += 1
                    raise _cancelled(busy)
                rule._serial += 1
                serial = rule._serial
                for item in items:
                    rule._taken[item] = serial
            try:
                time.sleep(rule.seconds)  # the transaction runs: its items stay taken
                return original(handler)
            finally:
                with rule._lock:
                    for item in items:
                        if rule._taken.get(item) == serial:
                            del rule._taken[item]

        return transaction

    def _single_write(self, name: str, original: Any) -> Any:
        rule = self

        def single_write(handler: Any) -> Any:
            with rule._lock:
                taken = bool(rule._taken) and any(
                    item in rule._taken for item in _written(name, handler.dynamodb_backend, handler.body)
                )
                if taken:
                    rule.conflicts += 1
            if taken:
                raise _conflict()
            return original(handler)

        return single_write


class TransactionTokens(MotoPatches):
    """DynamoDB's idempotent transactions: a token seen on a success within ``TOKEN_SECONDS``
    answers success again without writing (moto ignores the token and writes twice)."""

    def __init__(self, clock: Any = time.time):
        super().__init__()
        self.clock = clock
        self.replays = 0  # retries answered from a token, nothing written
        # token -> (completed at, items, answer), in the order they completed
        self._seen: dict[str, tuple[float, str, Any]] = {}
        self._running: set[str] = set()  # tokens of transactions under way
        self._lock = threading.Lock()

    def _forget_expired(self, now: float) -> None:
        """Tokens past their 10 minutes, oldest first (a cost flat in how many are kept)."""
        while self._seen:
            oldest = next(iter(self._seen))
            if now - self._seen[oldest][0] < TOKEN_SECONDS:
                return
            del self._seen[oldest]

    def apply(self) -> None:
        from moto.dynamodb.responses import DynamoHandler

        self._patch(
            DynamoHandler, "transact_write_items", self._idempotent(DynamoHandler.transact_write_items)
        )

    def _idempotent(self, original: Any) -> Any:
        rule = self

        def transaction(handler: Any) -> Any:
            token = handler.body.get("ClientRequestToken")
            if not token:
                return original(handler)
            items = json.dumps(handler.body.get("TransactItems", []), sort_keys=True)
            with rule._lock:
                rule._forget_expired(rule.clock())
                if token in rule._running:  # the SDK retries this one (TransactionInProgress)
                    raise _in_progress()
                seen = rule._seen.get(token)
                if seen is None:
                    rule._running.add(token)
            if seen is not None:
                if seen[1] != items:
                    raise _mismatch()
                rule.replays += 1
                return seen[2]
            try:
                answer = original(handler)
            finally:
                with rule._lock:
                    rule._running.discard(token)
            with rule._lock:
                rule._seen[token] = (rule.clock(), items, answer)
            return answer

        return transaction


def _item_id(backend: Any, entry: dict[str, Any]) -> ItemId:
    operation = next(iter(entry.values()))
    table = operation.get("TableName", "")
    key = operation.get("Key") or item_key(backend, table, operation.get("Item")) or {}
    return table, json.dumps(key, sort_keys=True)


def _written(name: str, backend: Any, body: dict[str, Any]) -> list[ItemId]:
    if name == "batch_write_item":
        found = []
        for table, requests in (body.get("RequestItems") or {}).items():
            for request in requests:
                operation = request.get("PutRequest") or request.get("DeleteRequest") or {}
                found.append(_item_id(backend, {"Op": {"TableName": table, **operation}}))
        return found
    return [_item_id(backend, {"Op": body})]


def _cancelled(busy: list[bool]) -> Exception:
    from moto.dynamodb.exceptions import TransactionCanceledException

    return TransactionCanceledException(
        [
            ("TransactionConflict", "Transaction is ongoing for the item", None)
            if taken
            else (None, None, None)
            for taken in busy
        ]
    )


def _conflict() -> Exception:
    from moto.dynamodb.exceptions import DynamodbException

    return DynamodbException(
        "com.amazonaws.dynamodb.v20120810#TransactionConflictException",
        "Transaction is ongoing for the item",
    )


def _in_progress() -> Exception:
    from moto.dynamodb.exceptions import DynamodbException

    return DynamodbException(
        "com.amazonaws.dynamodb.v20120810#TransactionInProgressException",
        "The transaction with the given request token is already in progress",
    )


def _mismatch() -> Exception:
    from moto.dynamodb.exceptions import DynamodbException

    return DynamodbException(
        "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
        "The request uses the same client token as a previous, but non-identical request",
    )
