"""What the local stack changes in moto's DynamoDB so that it keeps DynamoDB's own guarantees: each
write atomic (one lock around moto's writes and its request handling), a Query that reads one
partition, a transaction rolled back from a journal instead of deep copies of whole tables; and,
where a test turns it on, what DynamoDB does not guarantee: a ``GetItem`` without
``ConsistentRead`` may not see the writes of the last moments (``EventualReads``).

Usage::

    undo = serialise_dynamodb_writes(); undo_query = partition_queries()
    reads = EventualReads(); reads.apply()
    with reads.lagging(1.0):      # an eventually consistent GetItem misses writes of the last second
        ...
    reads.restore(); undo_query(); undo()
"""

from __future__ import annotations

import copy
import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

HANDLED_UNDER_THE_LOCK = (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "batch_get_item",
    "batch_write_item",
    "transact_write_items",
    "transact_get_items",
)


def serialise_dynamodb_writes() -> Callable[[], None]:
    """DynamoDB applies each write to an item atomically (ADD counters, conditional puts); moto's
    threaded server reads, changes and stores the item without a lock, so two concurrent ADDs
    can lose one (seen once: 49 of 50 metered calls). One lock around moto's writes restores
    DynamoDB's guarantee locally; our code is not changed by it. The same lock covers each
    request's handling (moto builds an answer from the item it wrote, and reads items, while
    another request may be changing them: "dictionary changed size during iteration" at a busy
    key's 50 calls a second). Returns what undoes it."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    saved: dict[tuple[object, str], object] = {}
    lock = threading.RLock()  # re-entrant: a transaction's writes may call the others
    for owner, names in (
        (DynamoDBBackend, ("put_item", "update_item", "delete_item", "transact_write_items")),
        (DynamoHandler, HANDLED_UNDER_THE_LOCK),
    ):
        for name in names:
            original = getattr(owner, name)
            saved[(owner, name)] = original
            if owner is DynamoDBBackend and name == "transact_write_items":
                original = journalled_transaction(original)

            def serialised(*args, _original=original, **kwargs):
                with lock:
                    return _original(*args, **kwargs)

            setattr(owner, name, serialised)
    # moto backs up each table a transaction touches with a deep copy, to roll back on failure:
    # the usage table holds a marker per metered call, so every call copied thousands of items
    # (a Schemathesis run grew the process by GBs). The journal above rolls back instead.
    table_copy = getattr(Table, "__deepcopy__", None)
    Table.__deepcopy__ = lambda table, memo: table

    def restore() -> None:
        if table_copy is None:
            del Table.__deepcopy__
        else:
            Table.__deepcopy__ = table_copy
        for (owner, name), original in saved.items():
            setattr(owner, name, original)

    return restore


def partition_queries() -> Callable[[], None]:
    """A Query of a table reads its one partition on DynamoDB; moto looks at every item of the
    table for each one (a table of a million items made each query take seconds). Here moto's
    own query runs on a view of the table that holds the queried partition only; index queries
    are left as they are. Returns what undoes it."""
    from moto.dynamodb.models.table import Table

    original = Table.query

    class Partition:
        def __init__(self, table, hash_key):
            self._table, self._hash_key = table, hash_key

        def __getattr__(self, name):
            return getattr(self._table, name)

        def all_items(self):
            for _ in range(10):  # a write may add to the partition meanwhile (moto reads unlocked)
                try:
                    return list(self._table.items.get(self._hash_key, {}).values())
                except RuntimeError:
                    continue
            return list(self._table.items.get(self._hash_key, {}).values())

    @functools.wraps(original)
    def query(self, hash_key, *args, **kwargs):  # moto's parameter names: callers pass them by name
        index = kwargs.get("index_name") if "index_name" in kwargs else (args[6] if len(args) > 6 else None)
        if index or not self.range_key_attr or hash_key is None:
            return original(self, hash_key, *args, **kwargs)
        return original(Partition(self, hash_key), hash_key, *args, **kwargs)

    Table.query = query

    def restore() -> None:
        Table.query = original

    return restore


def journalled_transaction(transact_write_items):
    """moto's TransactWriteItems, rolled back from a journal of the items it touches (their
    attributes before, or their absence) rather than from deep copies of whole tables."""

    def transact(backend, transact_items, *args, **kwargs):
        journal = []
        for entry in transact_items:
            operation = next(iter(entry.values()))
            table = backend.tables.get(operation.get("TableName"))
            if table is None:
                continue
            attributes = operation.get("Item") or operation.get("Key") or {}
            names = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
            if not all(n in attributes for n in names):
                continue  # moto refuses the request itself: nothing is written
            key = {n: attributes[n] for n in names}
            before = backend.get_item(table.name, key)
            journal.append(
                (table.name, key, copy.deepcopy(before.to_json()["Attributes"]) if before else None)
            )
        try:
            return transact_write_items(backend, transact_items, *args, **kwargs)
        except Exception:
            for table_name, key, attributes in reversed(journal):
                if attributes is None:
                    backend.delete_item(table_name, key)
                else:
                    backend.put_item(table_name, attributes)
            raise

    return transact


class EventualReads:
    """DynamoDB's eventually consistent reads, which moto does not have: while ``lagging(seconds)``
    is on, a ``GetItem`` without ``ConsistentRead`` answers an item as it was before its writes of
    the last ``seconds`` (absent, if it was made then), as a read of a replica that has not caught up
    may (DynamoDB: "might not reflect the results of a recently completed write operation"; a
    consistent read always does). Off (the default), reads are as moto's, strongly consistent."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.lag = 0.0
        self.missed = 0  # reads answered from before a recent write
        self._before: dict[str, tuple[float, dict[str, Any] | None]] = {}  # item -> (first write, old)
        self._saved: dict[tuple[object, str], object] = {}

    @contextmanager
    def lagging(self, seconds: float) -> Iterator[EventualReads]:
        self.lag, self._before = seconds, {}
        try:
            yield self
        finally:
            self.lag, self._before = 0.0, {}

    def apply(self) -> None:
        from moto.dynamodb.models import DynamoDBBackend
        from moto.dynamodb.responses import DynamoHandler

        for name in ("put_item", "update_item", "delete_item"):
            self._patch(DynamoDBBackend, name, self._remembering(getattr(DynamoDBBackend, name)))
        self._patch(
            DynamoDBBackend,
            "transact_write_items",
            self._remembering_all(DynamoDBBackend.transact_write_items),
        )
        self._patch(DynamoHandler, "get_item", self._lagging_read(DynamoHandler.get_item))

    def restore(self) -> None:
        for (owner, name), original in self._saved.items():
            setattr(owner, name, original)
        self._saved = {}

    def _patch(self, owner: object, name: str, replacement: Callable[..., Any]) -> None:
        self._saved[(owner, name)] = getattr(owner, name)
        setattr(owner, name, replacement)

    @staticmethod
    def _name(table: str, key: dict[str, Any]) -> str:
        return table + json.dumps(key, sort_keys=True)

    def _remember(self, backend: Any, table_name: str, attributes: dict[str, Any]) -> None:
        """The item as it is before a write, kept for the lag from the first write of the window."""
        table = backend.tables.get(table_name)
        if table is None:
            return
        names = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
        if not all(n in attributes for n in names):
            return
        key = {n: attributes[n] for n in names}
        name, now = self._name(table_name, key), self.clock()
        kept = self._before.get(name)
        if kept is not None and now - kept[0] < self.lag:
            return  # the window's oldest state stays what a lagging read sees
        before = backend.get_item(table_name, key)
        self._before[name] = (now, copy.deepcopy(before.to_json()["Attributes"]) if before else None)

    def _remembering(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def write(backend: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
            if self.lag:
                attributes = kwargs.get("item_attrs") or kwargs.get("key") or (args[0] if args else {})
                self._remember(backend, table_name, attributes or {})
            return original(backend, table_name, *args, **kwargs)

        return functools.wraps(original)(write)

    def _remembering_all(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def transact(backend: Any, transact_items: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
            if self.lag:
                for entry in transact_items:
                    operation = next(iter(entry.values()))
                    self._remember(
                        backend,
                        operation.get("TableName", ""),
                        operation.get("Item") or operation.get("Key") or {},
                    )
            return original(backend, transact_items, *args, **kwargs)

        return functools.wraps(original)(transact)

    def _lagging_read(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def get_item(handler: Any) -> Any:
            if self.lag and not handler.body.get("ConsistentRead"):
                name = self._name(handler.body.get("TableName", ""), handler.body.get("Key") or {})
                kept = self._before.get(name)
                if kept is not None and self.clock() - kept[0] < self.lag:
                    from moto.dynamodb.responses import DynamoResult

                    self.missed += 1
                    return DynamoResult({"Item": kept[1]} if kept[1] is not None else {})
            return original(handler)

        return functools.wraps(original)(get_item)
