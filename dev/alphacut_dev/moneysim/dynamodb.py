"""A deterministic model of the DynamoDB the money path uses: one table (the usage table, with its
sparse ``open-by-due`` index and its TTL on ``expires_at``), behind a client with boto3's low-level
surface (``update_item``, ``put_item``, ``get_item``, ``query`` and its paginator,
``transact_write_items``, ``exceptions``), plus the metering queue (``send_message``).

Every call first asks the world (``alphacut_dev.moneysim.world``) what happens to it, which is where
the simulator's choices enter:

- ``NORMAL``: applied, answered as DynamoDB answers (a failed condition is a
  ``ConditionalCheckFailedException`` with the old item when asked for; a transaction whose condition
  failed is cancelled whole, one reason per item; an item twice in one transaction is invalid);
- ``LANDED_RETRIED``: applied, then applied again and that answer returned (the SDK's retry after a
  timeout: the second attempt meets the first one's write);
- ``LANDED_ERRED``: applied, then the client raises (a timeout after the SDK's last retry);
- ``REFUSED``: nothing written, the client raises (throttled past the SDK's retries);
- ``CONFLICT``: nothing written, ``TransactionConflict`` (a transaction overlapped another);
- ``KILLED``: the caller's function is stopped before the call (``Killed``, which no ``except
  Exception`` catches).

The index is eventually consistent: each write queues the item's new projection, applied at once
unless the world lets it lag (then ``propagate`` applies one item's oldest version). TTL deletes
an expired item when the world says so (``expire``), at any later moment; what it deleted is kept
apart (``tombstones``) for the invariants only, never shown to the code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

from botocore.exceptions import ClientError

from alphacut_dev.moneysim.expressions import (
    Invalid,
    Item,
    apply_update,
    evaluate,
    parse_condition,
    parse_update,
)

NORMAL, LANDED_RETRIED, LANDED_ERRED, REFUSED, CONFLICT, KILLED = (
    "normal",
    "landed-retried",
    "landed-erred",
    "refused",
    "conflict",
    "killed",
)
INDEX_KEYS = ("due_shard", "open_due")
INDEX_ATTRIBUTES = ("pk", "sk", "due_shard", "open_due", "amount", "settled")  # KEYS + INCLUDE
MAX_ITEM_BYTES = 400 * 1024

Key = tuple[str, str]
# requests as the code sent them -> as the model applies them: where planted bugs change a write
# (``alphacut_dev.moneysim.mutations``); empty outside a run with one planted
REWRITERS: list[Callable[[str, dict[str, Any]], dict[str, Any]]] = []


def _rewritten(kind: str, request: dict[str, Any]) -> dict[str, Any]:
    for rewrite in REWRITERS:
        request = rewrite(kind, request)
    return request


class Killed(BaseException):
    """The function running this call was stopped (a timeout, a crash, a deploy)."""


class ConditionalCheckFailedException(ClientError):
    pass


def _error(code: str, operation: str, message: str = "", **extra: Any) -> ClientError:
    kind = ConditionalCheckFailedException if code == "ConditionalCheckFailedException" else ClientError
    return kind({"Error": {"Code": code, "Message": message or code}, **extra}, operation)


def item_size(item: Item) -> int:
    """DynamoDB's item size, near enough: names and values in UTF-8 (numbers ~1 byte per 2 digits)."""

    def size(value: Any) -> int:
        if "S" in value:
            return len(value["S"].encode())
        if "N" in value:
            return len(value["N"]) // 2 + 1
        if "M" in value:
            return 3 + sum(len(name.encode()) + size(inner) + 1 for name, inner in value["M"].items())
        return len(repr(value))

    return sum(len(name.encode()) + size(value) for name, value in item.items())


class ModelTable:
    """The table's state: items, the index as the sweep sees it, what TTL removed, the queue."""

    def __init__(self) -> None:
        self.items: dict[Key, Item] = {}
        self.index: dict[Key, Item] = {}
        self.pending: dict[Key, list[Item | None]] = {}  # index versions not yet applied
        self.lag = False
        self.tombstones: dict[Key, Item] = {}
        self.messages: list[tuple[int, str]] = []  # the metering queue: (sent at, body)
        self.now = 0  # the world's clock, for what the queue stamps
        self.paid: dict[str, int] = {}  # marker id (call or task) -> credits its transaction charged
        self.watchers: list[Callable[[Key, Item | None, Item | None], None]] = []

    # ---- writes land here ---------------------------------------------------------------------
    def store(self, key: Key, item: Item | None) -> None:
        before = self.items.get(key)
        if item is None:
            self.items.pop(key, None)
        else:
            if item_size(item) > MAX_ITEM_BYTES:
                raise Invalid("Item size has exceeded the maximum allowed size")
            self.items[key] = item
        projected = _projection(item)
        if self.lag:
            self.pending.setdefault(key, []).append(projected)
        else:
            self._index(key, projected)
        for watch in self.watchers:
            watch(key, before, item)

    def _index(self, key: Key, projected: Item | None) -> None:
        if projected is None:
            self.index.pop(key, None)
        else:
            self.index[key] = projected

    def propagate(self, key: Key) -> None:
        """The index applies this item's oldest version not yet applied."""
        versions = self.pending[key]
        self._index(key, versions.pop(0))
        if not versions:
            del self.pending[key]

    def catch_up(self) -> None:
        for key in list(self.pending):
            while key in self.pending:
                self.propagate(key)

    def expired(self, now: int) -> list[Key]:
        return sorted(
            k for k, item in self.items.items() if "expires_at" in item and int(item["expires_at"]["N"]) < now
        )

    def expire(self, key: Key) -> None:
        """TTL deletes the item (a service delete: it reaches the index too)."""
        self.tombstones[key] = self.items[key]
        self.store(key, None)

    def fingerprint(self) -> tuple[Any, ...]:
        return (
            _frozen(self.items),
            _frozen(self.index),
            _frozen(self.pending),
            tuple(self.messages),
            tuple(sorted(self.tombstones)),
        )


def _copy(value: Any) -> Any:
    """A deep copy of DynamoDB JSON (dicts of dicts of strings), ten times copy.deepcopy's speed."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def _projection(item: Item | None) -> Item | None:
    if item is None or not all(name in item for name in INDEX_KEYS):
        return None
    return {name: item[name] for name in INDEX_ATTRIBUTES if name in item}


def _key(key: dict[str, Any]) -> Key:
    return (key["pk"]["S"], key["sk"]["S"])


def _project(item: Item, expression: str | None, names: dict[str, str]) -> Item:
    if not expression:
        return _copy(item)
    wanted = [names.get(part.strip(), part.strip()) for part in expression.split(",")]
    return {name: _copy(item[name]) for name in wanted if name in item}


EXPRESSIONS = ("UpdateExpression", "ConditionExpression", "ProjectionExpression")
PLACEHOLDER = re.compile(r"[#:][A-Za-z0-9_]+")


def refuse_what_dynamodb_refuses(request: dict[str, Any]) -> None:
    """What DynamoDB refuses before it looks at the item: a name or value given and not used in the
    request's expressions, and an update that names one attribute twice ("Two document paths
    overlap": a SET and a REMOVE of the same attribute, say)."""
    used = {token for name in EXPRESSIONS for token in PLACEHOLDER.findall(request.get(name) or "")}
    for given, kind in (
        (request.get("ExpressionAttributeNames") or {}, "Names"),
        (request.get("ExpressionAttributeValues") or {}, "Values"),
    ):
        unused = ", ".join(sorted(set(given) - used))
        if unused:
            raise Invalid(
                f"Value provided in ExpressionAttribute{kind} unused in expressions: keys: {{{unused}}}"
            )
    if request.get("UpdateExpression"):
        names = request.get("ExpressionAttributeNames") or {}
        paths = [
            tuple(names.get(str(part), str(part)) for part in path.parts)
            for _, path, _ in parse_update(request["UpdateExpression"])
        ]
        for index, one in enumerate(paths):
            for other in paths[index + 1 :]:
                if one[: len(other)] == other[: len(one)]:  # the same path, or one inside the other
                    raise Invalid(
                        f"Invalid UpdateExpression: Two document paths overlap with each other: {list(one)}"
                    )


class ModelDynamoDB:
    """The client one function uses: every call goes through ``world.decide`` first."""

    exceptions = SimpleNamespace(ConditionalCheckFailedException=ConditionalCheckFailedException)

    def __init__(
        self,
        table: ModelTable,
        decide: Callable[[str, bool, bool, frozenset[Key] | None], str],
        retries: bool = True,
    ):
        self.table, self.decide = table, decide
        # False: a client the SDK never retries (``clients.unretried``): a write that landed and
        # lost its answer is raised to the code, never applied again
        self.retries = retries
        self.observe: Callable[[Any], None] = lambda answer: None  # what the caller was answered

    # ---- what happens to a call -----------------------------------------------------------------
    def _call(
        self,
        operation: str,
        writes: bool,
        run: Callable[[], Any],
        transaction: bool = False,
        keys: frozenset[Key] | None = None,
    ) -> Any:
        """``keys``: the items the call reads or writes (None: a query, which may read any)."""
        try:
            answer = self._answer(operation, writes, run, transaction, keys)
        except ClientError as error:
            self.observe(error)
            raise
        self.observe(answer)
        return answer

    def _answer(
        self,
        operation: str,
        writes: bool,
        run: Callable[[], Any],
        transaction: bool,
        keys: frozenset[Key] | None,
    ) -> Any:
        decision = self.decide(operation, writes, transaction, keys)
        if decision == LANDED_RETRIED and not self.retries:
            decision = LANDED_ERRED
        if decision == KILLED:
            raise Killed(operation)
        if decision == REFUSED:
            raise _error("ProvisionedThroughputExceededException", operation)
        if decision == CONFLICT:
            if transaction:
                raise _error(
                    "TransactionCanceledException",
                    operation,
                    CancellationReasons=[{"Code": "TransactionConflict"}],
                )
            raise _error("TransactionConflictException", operation)
        if decision in (LANDED_RETRIED, LANDED_ERRED):
            try:
                first = run()
            except ClientError as error:
                first = error
            if decision == LANDED_ERRED:
                raise _error("InternalServerError", operation, "the write landed; the client timed out")
            if transaction:  # the client token makes the retry answer as the first attempt did
                if isinstance(first, ClientError):
                    raise first
                return first
        return run()

    def _validated(self, run: Callable[[], Any], operation: str) -> Callable[[], Any]:
        def wrapped() -> Any:
            try:
                return run()
            except Invalid as invalid:
                raise _error("ValidationException", operation, str(invalid)) from None

        return wrapped

    # ---- single items -----------------------------------------------------------------------------
    def update_item(self, **request: Any) -> dict[str, Any]:
        request = _rewritten("Update", request)
        keys = frozenset([_key(request["Key"])])
        return self._call(
            "UpdateItem", True, self._validated(lambda: self._update(request), "UpdateItem"), keys=keys
        )

    def _update(self, request: dict[str, Any]) -> dict[str, Any]:
        refuse_what_dynamodb_refuses(request)
        key = _key(request["Key"])
        names, values = (
            request.get("ExpressionAttributeNames", {}),
            request.get("ExpressionAttributeValues", {}),
        )
        before = self.table.items.get(key)
        current = before or {"pk": request["Key"]["pk"], "sk": request["Key"]["sk"]}
        self._check(request, before, names, values, "UpdateItem")
        after = apply_update(parse_update(request["UpdateExpression"]), current, names, values)
        self.table.store(key, after)
        answer: dict[str, Any] = {}
        returns = request.get("ReturnValues", "NONE")
        if returns == "ALL_NEW":
            answer["Attributes"] = _copy(after)
        elif returns == "UPDATED_NEW":
            changed = {
                name
                for _, path, _ in parse_update(request["UpdateExpression"])
                for name in [names.get(path.parts[0], path.parts[0])]
            }
            answer["Attributes"] = {name: _copy(after[name]) for name in changed if name in after}
        elif returns == "ALL_OLD" and before is not None:
            answer["Attributes"] = _copy(before)
        return answer

    def _check(
        self,
        request: dict[str, Any],
        before: Item | None,
        names: dict[str, str],
        values: dict[str, Any],
        operation: str,
    ) -> None:
        condition = request.get("ConditionExpression")
        if condition and not evaluate(parse_condition(condition), before or {}, names, values):
            extra = {}
            if request.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and before is not None:
                extra["Item"] = _copy(before)
            raise _error(
                "ConditionalCheckFailedException", operation, "The conditional request failed", **extra
            )

    def put_item(self, **request: Any) -> dict[str, Any]:
        request = _rewritten("Put", request)
        keys = frozenset([_key(request["Item"])])
        return self._call("PutItem", True, self._validated(lambda: self._put(request), "PutItem"), keys=keys)

    def _put(self, request: dict[str, Any]) -> dict[str, Any]:
        refuse_what_dynamodb_refuses(request)
        key = _key(request["Item"])
        names, values = (
            request.get("ExpressionAttributeNames", {}),
            request.get("ExpressionAttributeValues", {}),
        )
        self._check(request, self.table.items.get(key), names, values, "PutItem")
        self.table.store(key, _copy(request["Item"]))
        return {}

    def get_item(self, **request: Any) -> dict[str, Any]:
        if not request.get("ConsistentRead"):
            raise NotImplementedError(
                "the model answers consistent reads only; the money path makes no other"
            )

        def run() -> dict[str, Any]:
            item = self.table.items.get(_key(request["Key"]))
            if item is None:
                return {}
            return {
                "Item": _project(
                    item, request.get("ProjectionExpression"), request.get("ExpressionAttributeNames", {})
                )
            }

        return self._call("GetItem", False, run, keys=frozenset([_key(request["Key"])]))

    # ---- queries ----------------------------------------------------------------------------------
    def query(self, **request: Any) -> dict[str, Any]:
        return self._call("Query", False, lambda: self._query(request))

    def _query(self, request: dict[str, Any]) -> dict[str, Any]:
        names, values = (
            request.get("ExpressionAttributeNames", {}),
            request.get("ExpressionAttributeValues", {}),
        )
        if request.get("IndexName"):
            if request.get("ConsistentRead"):
                raise _error(
                    "ValidationException",
                    "Query",
                    "Consistent reads are not supported on global secondary indexes",
                )
            source, order = self.table.index, "open_due"
        else:
            source, order = self.table.items, "sk"
        key_condition = parse_condition(request["KeyConditionExpression"])
        found = [item for item in source.values() if evaluate(key_condition, item, names, values)]
        found.sort(key=lambda item: int(item[order]["N"]) if "N" in item[order] else item[order]["S"])
        if request.get("FilterExpression"):
            condition = parse_condition(request["FilterExpression"])
            found = [item for item in found if evaluate(condition, item, names, values)]
        projection = request.get("ProjectionExpression")
        return {"Items": [_project(item, projection, names) for item in found]}

    def get_paginator(self, operation: str) -> Any:
        assert operation == "query", operation
        return _Paginator(self)

    # ---- transactions -----------------------------------------------------------------------------
    def transact_write_items(self, TransactItems: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
        items = [
            {kind: _rewritten(kind, request) for kind, request in op.items()} for op in _copy(TransactItems)
        ]
        keys = frozenset(_key(r.get("Key") or r.get("Item")) for op in items for r in op.values())
        run = self._validated(lambda: self._transact(items), "TransactWriteItems")
        return self._call("TransactWriteItems", True, run, transaction=True, keys=keys)

    def _transact(self, operations: list[dict[str, Any]]) -> dict[str, Any]:
        keys = [_key(op[kind].get("Key") or op[kind].get("Item")) for op in operations for kind in op]
        if len(set(keys)) != len(keys):
            raise Invalid("Transaction request cannot include multiple operations on one item")
        reasons, writes = [], []
        for operation in operations:
            ((kind, request),) = operation.items()
            refuse_what_dynamodb_refuses(request)
        for operation in operations:
            ((kind, request),) = operation.items()
            key = _key(request.get("Key") or request["Item"])
            before = self.table.items.get(key)
            names, values = (
                request.get("ExpressionAttributeNames", {}),
                request.get("ExpressionAttributeValues", {}),
            )
            condition = request.get("ConditionExpression")
            if condition and not evaluate(parse_condition(condition), before or {}, names, values):
                reasons.append(
                    {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}
                )
                continue
            reasons.append({"Code": "None"})
            if kind == "Put":
                writes.append((key, _copy(request["Item"])))
            elif kind == "Update":
                current = before or {"pk": request["Key"]["pk"], "sk": request["Key"]["sk"]}
                writes.append(
                    (key, apply_update(parse_update(request["UpdateExpression"]), current, names, values))
                )
            elif kind == "Delete":
                writes.append((key, None))
        if any(reason["Code"] != "None" for reason in reasons):
            raise _error("TransactionCanceledException", "TransactWriteItems", CancellationReasons=reasons)
        for key, item in writes:
            if item is not None and item_size(item) > MAX_ITEM_BYTES:
                raise Invalid("Item size has exceeded the maximum allowed size")
        marker, charged = "", 0
        for key, item in writes:
            if key[0].startswith(("call#", "charge#")):
                marker = key[0].partition("#")[2]
            if key[0].startswith("usage#") and key[1].split("#")[1:2] == ["*"]:
                before = self.table.items.get(key, {})
                charged += int((item or {}).get("credits", {}).get("N", 0)) - int(
                    before.get("credits", {}).get("N", 0)
                )
            self.table.store(key, item)
        if marker:
            self.table.paid[marker] = self.table.paid.get(marker, 0) + charged
        return {}


class _Paginator:
    """One page: the model's tables are small."""

    def __init__(self, client: ModelDynamoDB):
        self.client = client

    def paginate(self, **request: Any) -> Iterator[dict[str, Any]]:
        yield self.client.query(**request)


class ModelSQS:
    """The metering queue: a message sent is kept until the consumer takes it."""

    def __init__(self, table: ModelTable, decide: Callable[[str, bool, bool, frozenset[Key] | None], str]):
        self.table, self.decide = table, decide

    def send_message(self, QueueUrl: str, MessageBody: str, **_: Any) -> dict[str, Any]:
        decision = self.decide("SendMessage", True, False, frozenset([("queue", "")]))
        if decision == KILLED:
            raise Killed("SendMessage")
        if decision in (REFUSED, CONFLICT):
            raise _error("ServiceUnavailable", "SendMessage")
        self.table.messages.append((self.table.now, MessageBody))
        if decision in (LANDED_RETRIED, LANDED_ERRED):  # at-least-once: the retry sends it again
            self.table.messages.append((self.table.now, MessageBody))
        return {"MessageId": str(len(self.table.messages))}
