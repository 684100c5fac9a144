"""DynamoDB's capacity rules, which moto does not apply: each request's consumed capacity, metered
the way DynamoDB bills it, and each partition's throughput limit.

- Read units: 4 KB units of what a request reads *before* its filter. GetItem: the item (a
  missing one still costs the minimum); Query and Scan: the items examined, added up and rounded
  up once per request (a page); BatchGetItem: per item. Half for an eventually consistent read,
  twice in a transaction.
- Write units: 1 KB units of the larger of the item before and after the write (PutItem,
  UpdateItem, DeleteItem; a write whose condition fails still consumes them), twice in a
  transaction. Each global secondary index whose entry changes costs its own units (a changed
  index key: the old entry deleted and the new one put).
- Per partition: at most 3,000 read units and 1,000 write units a second. A partition here is one
  partition key value of a table or an index (DynamoDB may split a busy key's items across
  partitions by sort key, never one item's writes: so this is what one item, or one key's
  neighbouring items, can take). Past it a request is refused
  ``ProvisionedThroughputExceededException`` before it runs (the SDK retries it); a BatchGetItem
  reads the keys it can and answers the others in ``UnprocessedKeys`` (refused only when it can
  read none).

``ReturnConsumedCapacity`` answers with these figures, and ``requests`` keeps every request's
consumption (tests and benchmarks read it with ``mark`` / ``since``).

Usage::

    capacity = DynamoDBCapacity()
    capacity.apply()                           # patches moto, in this process
    mark = capacity.mark(); ...; used = capacity.since(mark)
    used.read_units, used.write_units, used.items_read, used.throttled
    capacity.restore()
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from alphacut_dev.local.patches import MotoPatches

READ_UNIT_BYTES, WRITE_UNIT_BYTES = 4096, 1024
PARTITION_READ_UNITS, PARTITION_WRITE_UNITS = 3000.0, 1000.0  # a second
THROTTLED = "ProvisionedThroughputExceededException"
READS = ("get_item", "batch_get_item", "query", "scan", "transact_get_items")
WRITES = ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items")

Partition = tuple[str, str, str]  # table, index ("" for the table), partition key value


@dataclass
class Consumed:
    """One request's consumption."""

    operation: str
    table: str
    read_units: float = 0.0
    write_units: float = 0.0
    items_read: int = 0  # examined, before any filter
    read_bytes: int = 0  # what a query or scan examined
    index_write_units: float = 0.0
    partitions: dict[Partition, tuple[float, float]] = field(default_factory=dict)  # -> (read, write)
    throttled: bool = False
    at: float = 0.0

    def charge(self, partition: Partition, read: float = 0.0, write: float = 0.0) -> None:
        before = self.partitions.get(partition, (0.0, 0.0))
        self.partitions[partition] = (before[0] + read, before[1] + write)


@dataclass
class Usage:
    """What a stretch of requests consumed, added up."""

    requests: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    index_write_units: float = 0.0
    items_read: int = 0
    throttled: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, consumed: Iterable[Consumed]) -> Usage:
        usage = cls()
        for one in consumed:
            usage.requests += 1
            usage.read_units += one.read_units
            usage.write_units += one.write_units
            usage.index_write_units += one.index_write_units
            usage.items_read += one.items_read
            usage.throttled += one.throttled
            usage.by_operation[one.operation] = usage.by_operation.get(one.operation, 0) + 1
        return usage


class TokenBucket:
    """A partition's units a second: refills continuously, holds at most one second's worth."""

    def __init__(self, rate: float, clock: Callable[[], float]):
        self.rate, self.clock = rate, clock
        self.tokens, self.updated = rate, clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def admits(self) -> bool:
        self._refill()
        return self.tokens > 0

    def take(self, units: float) -> None:
        self._refill()
        self.tokens -= units


def read_units(size: int, consistent: bool, transactional: bool = False) -> float:
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return units * (2 if transactional else 1) * (1 if consistent or transactional else 0.5)


def write_units(before: int, after: int, transactional: bool = False) -> float:
    return max(1, math.ceil(max(before, after) / WRITE_UNIT_BYTES)) * (2 if transactional else 1)


def item_size(item: Any) -> int:
    """An item's size as DynamoDB counts it: attribute names and values (moto's ``Item.size``)."""
    return int(item.size()) if item is not None else 0


class DynamoDBCapacity(MotoPatches):
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        read_limit: float = PARTITION_READ_UNITS,
        write_limit: float = PARTITION_WRITE_UNITS,
        keep: int = 200_000,
    ):
        super().__init__()
        self.clock, self.read_limit, self.write_limit, self.keep = clock, read_limit, write_limit, keep
        self.requests: list[Consumed] = []
        self.dropped = 0  # requests no longer kept (the list keeps the last ``keep``)
        self._buckets: dict[tuple[Partition, str], TokenBucket] = {}
        self._lock = threading.Lock()
        self._current = threading.local()

    # ---- what tests and benchmarks read -----------------------------------------------------------
    def mark(self) -> int:
        with self._lock:
            return self.dropped + len(self.requests)

    def since(self, mark: int, table: str | None = None) -> Usage:
        with self._lock:
            start = max(0, mark - self.dropped)
            chosen = [c for c in self.requests[start:] if table is None or c.table == table]
        return Usage.of(chosen)

    def busiest(self, mark: int = 0) -> dict[str, float]:
        """The most read and write units any one partition took in any one second since ``mark``."""
        with self._lock:
            chosen = self.requests[max(0, mark - self.dropped) :]
        seconds: dict[tuple[Partition, int], list[float]] = {}
        for one in chosen:
            for partition, (read, write) in one.partitions.items():
                total = seconds.setdefault((partition, int(one.at)), [0.0, 0.0])
                total[0] += read
                total[1] += write
        return {
            "read_units": max((v[0] for v in seconds.values()), default=0.0),
            "write_units": max((v[1] for v in seconds.values()), default=0.0),
        }

    # ---- the rules ----------------------------------------------------------------------------------
    def _bucket(self, partition: Partition, kind: str) -> TokenBucket:
        key = (partition, kind)
        if key not in self._buckets:
            self._buckets[key] = TokenBucket(
                self.read_limit if kind == "read" else self.write_limit, self.clock
            )
        return self._buckets[key]

    def _admit(self, partitions: list[tuple[Partition, str]]) -> bool:
        with self._lock:
            return all(self._bucket(p, kind).admits() for p, kind in partitions)

    def _record(self, consumed: Consumed) -> None:
        with self._lock:
            for partition, (read, write) in consumed.partitions.items():
                if read:
                    self._bucket(partition, "read").take(read)
                if write:
                    self._bucket(partition, "write").take(write)
            self.requests.append(consumed)
            if len(self.requests) > self.keep:
                cut = len(self.requests) - self.keep
                del self.requests[:cut]
                self.dropped += cut

    # ---- moto ---------------------------------------------------------------------------------------

    def apply(self) -> None:
        from moto.dynamodb.models.table import Table
        from moto.dynamodb.responses import DynamoHandler

        for name in READS + WRITES:
            self._patch(DynamoHandler, name, self._metered(name, getattr(DynamoHandler, name)))
        for name in ("query", "scan"):
            self._patch(Table, name, self._examined(name, getattr(Table, name)))

    def _examined(self, name: str, original: Any) -> Any:
        """Table.query / Table.scan: the items examined before the filter, sized for the meter."""
        signature = inspect.signature(original)
        projection = "projection_expressions" if name == "query" else "projection_expression"
        capacity = self

        # by name only: a second meter (a test's, over the local stack's) calls this one by name
        @functools.wraps(original)
        def examined(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            arguments = bound.arguments
            condition = arguments.pop("filter_expression", None)
            projected = arguments.get(projection)
            arguments[projection] = None
            extra = arguments.pop("filter_kwargs", {}) if name == "query" else {}
            items, scanned, last = original(**arguments, **extra)
            consumed = getattr(capacity._current, "consumed", None)
            if consumed is not None:
                consumed.items_read += len(items)
                consumed.read_bytes += sum(item_size(i) for i in items)
            if condition is not None:
                items = [item for item in items if condition.expr(item)]
            if projected:
                items = [item.project(projected) for item in items]
            return items, scanned, last

        return examined

    def _metered(self, name: str, original: Any) -> Any:
        capacity = self

        def metered(handler: Any) -> Any:
            body, backend = handler.body, handler.dynamodb_backend
            targets = _targets(name, body, backend)  # (table, key, transactional, kind)
            unread: dict[str, list[Any]] = {}
            if name == "batch_get_item":
                targets, unread = capacity._leave_unread(body, backend, targets)
            table = body.get("TableName") or (targets[0][0] if targets else "")  # a transaction's: its first
            consumed = Consumed(name, table, at=capacity.clock())
            partitions = [(_partition(backend, t, k), kind) for t, k, _, kind in targets if k is not None]
            if name == "query":
                partitions.append(((body["TableName"], body.get("IndexName", ""), _query_hash(body)), "read"))
            if not capacity._admit(partitions):
                consumed.throttled = True
                capacity._record(consumed)
                raise _throttled()
            # a copy: moto changes an item in place
            before = {
                i: _copy_of(backend, t, k) for i, (t, k, _, kind) in enumerate(targets) if kind == "write"
            }
            capacity._current.consumed = consumed
            try:
                result = original(handler)
            finally:
                capacity._current.consumed = None
                capacity._settle(consumed, name, body, backend, targets, before)
                capacity._record(consumed)
            _answer_capacity(result, body, consumed)
            _answer_unread(result, body, unread)
            return result

        return metered

    def _leave_unread(
        self, body: dict[str, Any], backend: Any, targets: list[tuple[str, dict[str, Any] | None, bool, str]]
    ) -> tuple[list[tuple[str, dict[str, Any] | None, bool, str]], dict[str, list[Any]]]:
        """BatchGetItem over a partition past its rate: DynamoDB reads the other keys and answers
        the refused ones in ``UnprocessedKeys``; only when it can read none is the call refused.
        The request is cut to the keys read; returns their targets and the unread keys by table."""
        read = []
        unread: dict[str, list[Any]] = {}
        for target in targets:
            table, key = target[0], target[1]
            if key is None or self._admit([(_partition(backend, table, key), "read")]):
                read.append(target)
            else:
                unread.setdefault(table, []).append(key)
        if not read or not unread:
            return targets, {}  # all or nothing: as any other request
        for table, request in body["RequestItems"].items():
            request["Keys"] = [key for key in request["Keys"] if key not in unread.get(table, [])]
        return read, unread

    def _settle(
        self,
        consumed: Consumed,
        name: str,
        body: dict[str, Any],
        backend: Any,
        targets: list[tuple[str, dict[str, Any] | None, bool, str]],
        before: dict[int, Any],
    ) -> None:
        """The request's units, from what it read and what it changed."""
        consistent = bool(body.get("ConsistentRead"))
        if name in ("query", "scan"):
            consumed.read_units = read_units(consumed.read_bytes, consistent)
            if name == "query":
                consumed.charge(
                    (body["TableName"], body.get("IndexName", ""), _query_hash(body)),
                    read=consumed.read_units,
                )
            return
        for index, (table, key, transactional, kind) in enumerate(targets):
            if key is None:
                continue
            partition = _partition(backend, table, key)
            if kind == "read":
                size = item_size(_copy_of(backend, table, key))
                units = read_units(size, consistent or transactional, transactional)
                consumed.read_units += units
                consumed.items_read += 1
                consumed.charge(partition, read=units)
                continue
            old = before.get(index)
            new = _copy_of(backend, table, key)
            units = write_units(item_size(old), item_size(new), transactional)
            consumed.write_units += units
            consumed.charge(partition, write=units)
            for index_partition, index_units in _index_writes(backend, table, old, new):
                consumed.index_write_units += index_units
                consumed.charge(index_partition, write=index_units)


def _copy_of(backend: Any, table_name: str, key: dict[str, Any] | None) -> Any:
    """A copy of an item another request may be writing (moto writes in place, reads unlocked)."""
    for _ in range(20):
        try:
            return copy.deepcopy(_item(backend, table_name, key))
        except RuntimeError:  # "dictionary changed size during iteration"
            continue
    return copy.deepcopy(_item(backend, table_name, key))


def _throttled() -> Exception:
    from moto.dynamodb.exceptions import DynamodbException

    error = DynamodbException(
        f"com.amazonaws.dynamodb.v20120810#{THROTTLED}",
        "The level of configured provisioned throughput for one or more global secondary indexes or the "
        "table was exceeded (a partition's 3,000 read or 1,000 write units a second)",
    )
    return error


def _targets(
    name: str, body: dict[str, Any], backend: Any
) -> list[tuple[str, dict[str, Any] | None, bool, str]]:
    """The items a request names: (table, key, in a transaction, read or write)."""
    table = body.get("TableName", "")
    if name == "get_item":
        return [(table, body.get("Key"), False, "read")]
    if name == "put_item":
        return [(table, item_key(backend, table, body.get("Item")), False, "write")]
    if name in ("update_item", "delete_item"):
        return [(table, body.get("Key"), False, "write")]
    if name == "batch_get_item":
        return [
            (table_name, key, False, "read")
            for table_name, request in (body.get("RequestItems") or {}).items()
            for key in request.get("Keys", [])
        ]
    if name == "batch_write_item":
        found = []
        for table_name, requests in (body.get("RequestItems") or {}).items():
            for request in requests:
                if "PutRequest" in request:
                    found.append(
                        (
                            table_name,
                            item_key(backend, table_name, request["PutRequest"]["Item"]),
                            False,
                            "write",
                        )
                    )
                elif "DeleteRequest" in request:
                    found.append((table_name, request["DeleteRequest"]["Key"], False, "write"))
        return found
    if name in ("transact_write_items", "transact_get_items"):
        found = []
        for entry in body.get("TransactItems", []):
            kind, operation = next(iter(entry.items()))
            table_name = operation.get("TableName", "")
            key = operation.get("Key") or item_key(backend, table_name, operation.get("Item"))
            found.append((table_name, key, True, "read" if kind == "Get" else "write"))
        return found
    return []


def item_key(backend: Any, table_name: str, item: dict[str, Any] | None) -> dict[str, Any] | None:
    if not item:
        return None
    try:
        table = backend.get_table(table_name)
    except Exception:  # noqa: BLE001 - moto answers the missing table itself
        return None
    names = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
    return {n: item[n] for n in names if n in item} if all(n in item for n in names) else None


def _item(backend: Any, table_name: str, key: dict[str, Any] | None) -> Any:
    if key is None:
        return None
    try:
        return backend.get_item(table_name, key)
    except Exception:  # noqa: BLE001 - a malformed key: moto answers the request itself
        return None


def _partition(backend: Any, table_name: str, key: dict[str, Any]) -> Partition:
    try:
        hash_name = backend.get_table(table_name).hash_key_attr
    except Exception:  # noqa: BLE001
        hash_name = next(iter(key), "")
    return (table_name, "", _text(key.get(hash_name)))


def _query_hash(body: dict[str, Any]) -> str:
    """The partition key value a query reads (its key condition's ``=`` value)."""
    values = body.get("ExpressionAttributeValues") or {}
    condition = body.get("KeyConditionExpression") or ""
    first = condition.split(" AND ")[0]
    placeholder = first.split("=")[-1].strip() if "=" in first else ""
    return _text(values.get(placeholder)) if placeholder else ""


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return str(next(iter(value.values()), ""))
    return str(value or "")


def _index_writes(backend: Any, table_name: str, old: Any, new: Any) -> list[tuple[Partition, float]]:
    """The write units each global secondary index takes for this change of an item."""
    try:
        table = backend.get_table(table_name)
    except Exception:  # noqa: BLE001
        return []
    found = []
    for index in table.global_indexes:
        keys = [k["AttributeName"] for k in index.schema]
        hash_name = next(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH")

        def entry(item: Any, keys: list[str] = keys, index: Any = index) -> Any:
            return index.project(item) if item is not None and all(k in item.attrs for k in keys) else None

        before, after = entry(old), entry(new)
        if before is None and after is None:
            continue
        same_key = (
            before is not None and after is not None and all(before.attrs[k] == after.attrs[k] for k in keys)
        )
        if same_key and before.attrs == after.attrs:
            continue
        for side in [after] if same_key else [before, after]:
            if side is not None:
                partition = (table_name, index.name, _text(side.attrs[hash_name].to_json()))
                found.append((partition, write_units(item_size(side), 0)))
    return found


def _answer_unread(result: Any, body: dict[str, Any], unread: dict[str, list[Any]]) -> None:
    """The keys left unread, each table's with the rest of its request (as DynamoDB answers them)."""
    answer = getattr(result, "result", None)
    if not unread or not isinstance(answer, dict):
        return
    left = answer.setdefault("UnprocessedKeys", {})
    for table, keys in unread.items():
        left[table] = {**body["RequestItems"][table], "Keys": keys}


def _answer_capacity(result: Any, body: dict[str, Any], consumed: Consumed) -> None:
    """``ReturnConsumedCapacity``: the figures above in place of moto's fixed ones."""
    wanted = body.get("ReturnConsumedCapacity", "NONE")
    answer = getattr(result, "result", None)
    if wanted == "NONE" or not isinstance(answer, dict):
        return
    figures = {
        "TableName": consumed.table or next(iter(consumed.partitions), ("",))[0],
        "CapacityUnits": consumed.read_units + consumed.write_units + consumed.index_write_units,
        "ReadCapacityUnits": consumed.read_units,
        "WriteCapacityUnits": consumed.write_units + consumed.index_write_units,
    }
    multi = consumed.operation.startswith(("transact_", "batch_"))
    answer["ConsumedCapacity"] = [figures] if multi else figures
