"""The usage meter's writes: one transaction of marker and counters, conflicts on a busy key's
counters tried again, a repeated call counted once."""

from __future__ import annotations

import pytest
from alphacut.aws.transactions import CONFLICT_ATTEMPTS
from alphacut.aws.usage import MeteredCall, UsageMeter
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


def test_a_call_is_one_transaction_of_its_marker_and_both_counters():
    table = Table([])
    assert Meter(table).record(CALL)
    (items,) = table.writes
    assert items[0]["Put"]["Item"]["pk"]["S"] == "call#request-1"
    assert [i["Update"]["Key"]["sk"]["S"] for i in items[1:]] == ["2026-11-25#/v1/cutout", "2026-11-25#*"]


def test_a_transaction_conflict_on_a_busy_key_is_tried_again():
    conflict = cancelled("None", "TransactionConflict", "None")
    table = Table([conflict, conflict])
    assert Meter(table).record(CALL) and len(table.writes) == 1


def test_a_call_counted_already_counts_nothing_and_a_lasting_conflict_raises():
    assert not Meter(Table([cancelled("ConditionalCheckFailed", "None", "None")])).record(CALL)
    with pytest.raises(ClientError):
        Meter(Table([cancelled("None", "TransactionConflict", "None")] * CONFLICT_ATTEMPTS)).record(CALL)
