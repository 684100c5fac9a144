"""The usage meter's writes: one transaction of marker and counters (one shard of each), conflicts
on a busy key's counters tried again on another shard, a repeated call counted once, counters
read back whether sharded or written before shards."""

from __future__ import annotations

import pytest
from alphacut.aws.ledger.usage import COUNTER_SHARDS, MeteredCall, UsageMeter, parse_counter_key
from alphacut.aws.transactions import CONFLICT_ATTEMPTS
from botocore.exceptions import ClientError


def cancelled(*codes: str) -> ClientError:
    error = ClientError({"Error": {"Code": "TransactionCanceledException"}}, "TransactWriteItems")
    error.response["CancellationReasons"] = [{"Code": code} for code in codes]
    return error


class Table:
    def __init__(self, failures: list[ClientError]):
        self.failures, self.writes = failures, []

    def transact_write_items(self, TransactItems):
        if self.failures:
            raise self.failures.pop(0)
        self.writes.append(TransactItems)


class Meter(UsageMeter):
    def __init__(self, table: Table):
        super().__init__("usage")
        self.table = table

    @property
    def _db(self):
        return self.table


CALL = MeteredCall("key", "/v1/cutout", True, "request-1", "2026-11-25")


def shards(items: list[dict]) -> list[str]:
    return [i["Update"]["Key"]["sk"]["S"].rpartition("#")[2] for i in items[1:]]


def test_a_call_is_one_transaction_of_its_marker_and_one_shard_of_both_counters():
    table = Table([])
    assert Meter(table).record(CALL)
    (items,) = table.writes
    assert items[0]["Put"]["Item"]["pk"]["S"] == "call#request-1"
    keys = [parse_counter_key(i["Update"]["Key"]["sk"]["S"]) for i in items[1:]]
    assert keys == [("2026-11-25", "/v1/cutout"), ("2026-11-25", "*")]
    (shard,) = set(shards(items))
    assert 0 <= int(shard) < COUNTER_SHARDS


def test_a_transaction_conflict_on_a_busy_key_is_tried_again_on_other_shards():
    conflict = cancelled("None", "TransactionConflict", "None")
    seen = set()
    for _ in range(20):
        table = Table([conflict, conflict])
        meter = Meter(table)
        tried: list[str] = []
        build = meter._counter_update

        def counted(counts, key, tried=tried, build=build):
            tried.append(key)
            return build(counts, key)

        meter._counter_update = counted
        assert meter.record(CALL) and len(table.writes) == 1
        seen.add(len({key.rpartition("#")[2] for key in tried}))
    assert max(seen) > 1  # the attempts did not all write the same shard


def test_counters_written_before_shards_read_as_one_more_shard():
    assert parse_counter_key("2026-11-25#/v1/cutout") == ("2026-11-25", "/v1/cutout")
    assert parse_counter_key("2026-11-25#*#07") == ("2026-11-25", "*")
    assert parse_counter_key("2026-11-25#/v1/tasks/{task_id}#31") == ("2026-11-25", "/v1/tasks/{task_id}")


def test_a_call_counted_already_counts_nothing_and_a_lasting_conflict_raises():
    assert not Meter(Table([cancelled("ConditionalCheckFailed", "None", "None")])).record(CALL)
    with pytest.raises(ClientError):
        Meter(Table([cancelled("None", "TransactionConflict", "None")] * CONFLICT_ATTEMPTS)).record(CALL)
