"""What the local stack changes in moto's DynamoDB so that it keeps DynamoDB's own guarantees: each
write atomic (one lock around moto's writes and its request handling), a Query that reads one
partition, a transaction rolled back from a journal instead of deep copies of whole tables.

Usage::

    undo = serialise_dynamodb_writes(); undo_query = partition_queries()
    ...
    undo_query(); undo()
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable

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
