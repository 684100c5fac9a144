"""The local stack's DynamoDB capacity rules, in moto: read units counted on what a request
examines before its filter, write units on the larger item (twice in a transaction, and per
index entry changed), a partition's 1,000 write units a second, and transactions that conflict
with each other and with single writes while they run."""

from __future__ import annotations

import threading

import boto3
import pytest
from alphacut_dev.local.dynamodb_capacity import DynamoDBCapacity
from alphacut_dev.local.dynamodb_transactions import TransactionConflicts
from alphacut_dev.template import table_definition
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.unit.moto_table import unretried_table

TABLE = "rules"


@pytest.fixture
def dynamodb(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with unretried_table(TABLE) as db:  # keys and the sparse due index; each refusal seen, none retried
        yield db


@pytest.fixture
def capacity(dynamodb):
    rule = DynamoDBCapacity()
    rule.apply()
    yield rule
    rule.restore()


@pytest.fixture
def conflicts(dynamodb):
    rule = TransactionConflicts(seconds=0.3)
    rule.apply()
    yield rule
    rule.restore()


def item(pk: str, sk: str, **attributes: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": sk}, **{k: {"S": v} for k, v in attributes.items()}}


def test_a_query_is_metered_on_the_items_it_examines_before_its_filter(dynamodb, capacity):
    for n in range(300):
        dynamodb.put_item(TableName=TABLE, Item=item("hold#k", f"{n:04d}", pad="x" * 400, settled="yes"))
    mark = capacity.mark()
    answer = dynamodb.query(
        TableName=TABLE,
        ConsistentRead=True,
        KeyConditionExpression="pk = :pk",
        FilterExpression="attribute_not_exists(settled)",
        ExpressionAttributeValues={":pk": {"S": "hold#k"}},
        ReturnConsumedCapacity="TOTAL",
    )
    used = capacity.since(mark)
    assert answer["Count"] == 0 and used.items_read == 300
    assert used.read_units == 32 == answer["ConsumedCapacity"]["CapacityUnits"]  # 300 x 427 B in 4 KB units


def test_a_read_of_a_missing_item_costs_the_minimum_and_an_eventual_one_half(dynamodb, capacity):
    mark = capacity.mark()
    dynamodb.get_item(TableName=TABLE, Key=item("a", "b"), ConsistentRead=True)
    dynamodb.get_item(TableName=TABLE, Key=item("a", "b"))
    assert capacity.since(mark).read_units == 1.5


def test_a_write_costs_the_larger_item_in_1_kb_units_and_twice_in_a_transaction(dynamodb, capacity):
    mark = capacity.mark()
    dynamodb.put_item(TableName=TABLE, Item=item("w", "1", pad="x" * 2500))  # 3 KB
    dynamodb.put_item(TableName=TABLE, Item=item("w", "1"))  # replaces 3 KB with a few bytes: 3
    assert capacity.since(mark).write_units == 6
    mark = capacity.mark()
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": item("w", "2")}},
            {"Put": {"TableName": TABLE, "Item": item("w", "3")}},
        ]
    )
    assert capacity.since(mark).write_units == 4


def test_an_index_entry_that_changes_costs_its_own_write_units(dynamodb, capacity):
    mark = capacity.mark()
    dynamodb.put_item(TableName=TABLE, Item={**item("h", "1", due_shard="d0"), "open_due": {"N": "5"}})
    assert capacity.since(mark).index_write_units == 1
    mark = capacity.mark()
    dynamodb.update_item(
        TableName=TABLE,
        Key=item("h", "1"),
        UpdateExpression="SET open_due = :t",
        ExpressionAttributeValues={":t": {"N": "9"}},
    )
    assert capacity.since(mark).index_write_units == 2  # a new index key: delete and put
    mark = capacity.mark()
    dynamodb.update_item(TableName=TABLE, Key=item("h", "1"), UpdateExpression="REMOVE open_due")
    dynamodb.update_item(
        TableName=TABLE,
        Key=item("h", "1"),
        UpdateExpression="SET note = :n",
        ExpressionAttributeValues={":n": {"S": "x"}},
    )
    assert capacity.since(mark).index_write_units == 1  # out of the sparse index, then not in it


def test_one_item_takes_at_most_1000_write_units_a_second(dynamodb):
    now = [1000.0]  # the meter's clock, moved by hand: no refill while the writes run
    capacity = DynamoDBCapacity(clock=lambda: now[0])
    capacity.apply()
    try:
        pad = "x" * 9000  # 9 KB: 9 write units each
        refused = None
        for n in range(200):
            try:
                dynamodb.put_item(TableName=TABLE, Item=item("hot", "balance", pad=pad, n=str(n)))
            except ClientError as error:
                refused = (n, error.response["Error"]["Code"])
                break
        assert refused == (112, "ProvisionedThroughputExceededException")  # after 112 writes of 9 units
        dynamodb.put_item(TableName=TABLE, Item=item("cold", "balance", pad=pad))  # another partition: fine
        now[0] += 0.005  # 5 units back: the partition is still 3 units short (1,008 were written)
        with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
            dynamodb.put_item(TableName=TABLE, Item=item("hot", "balance", pad=pad))
        now[0] += 0.1  # 100 more
        dynamodb.put_item(TableName=TABLE, Item=item("hot", "balance", pad=pad))
    finally:
        capacity.restore()


def test_a_transaction_meeting_another_on_an_item_is_cancelled_for_conflict(dynamodb, conflicts):
    def transaction(sk: str) -> list[dict]:
        return [
            {"Put": {"TableName": TABLE, "Item": item("shared", "balance")}},
            {"Put": {"TableName": TABLE, "Item": item("own", sk)}},
        ]

    first = threading.Thread(target=dynamodb.transact_write_items, kwargs={"TransactItems": transaction("a")})
    first.start()
    while not conflicts._taken:
        pass
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=transaction("b"))
    first.join()
    reasons = [r["Code"] for r in refused.value.response["CancellationReasons"]]
    assert reasons == ["TransactionConflict", "None"] and conflicts.conflicts == 1
    dynamodb.transact_write_items(TransactItems=transaction("b"))  # once the first one is done


def test_a_single_write_to_an_item_a_transaction_holds_is_refused(dynamodb, conflicts):
    held = [{"Put": {"TableName": TABLE, "Item": item("shared", "balance")}}]
    first = threading.Thread(target=dynamodb.transact_write_items, kwargs={"TransactItems": held})
    first.start()
    while not conflicts._taken:
        pass
    with pytest.raises(ClientError) as refused:
        dynamodb.put_item(TableName=TABLE, Item=item("shared", "balance", n="2"))
    dynamodb.put_item(TableName=TABLE, Item=item("other", "balance"))  # an item it does not hold
    first.join()
    assert refused.value.response["Error"]["Code"] == "TransactionConflictException"


def test_an_eventually_consistent_read_may_miss_a_write_of_the_last_moments_and_a_consistent_one_never():
    from alphacut_dev.local.dynamodb_consistency import EventualReads

    moments = [100.0]
    with mock_aws():
        db = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
        )
        db.create_table(**table_definition("UsageTable", TABLE))
        reads = EventualReads(clock=lambda: moments[0])
        reads.apply()
        try:
            key = {"pk": {"S": "key#k1"}, "sk": {"S": "-"}}
            with reads.lagging(1.0):
                db.put_item(TableName=TABLE, Item=item("key#k1", "-", plan="credits"))
                assert "Item" not in db.get_item(TableName=TABLE, Key=key)  # a replica not caught up
                assert (
                    db.get_item(TableName=TABLE, Key=key, ConsistentRead=True)["Item"]["plan"]["S"]
                    == "credits"
                )
                db.update_item(
                    TableName=TABLE,
                    Key=key,
                    UpdateExpression="SET #p = :p",
                    ExpressionAttributeNames={"#p": "plan"},
                    ExpressionAttributeValues={":p": {"S": "free"}},
                )
                assert "Item" not in db.get_item(TableName=TABLE, Key=key)  # still the window's oldest
                moments[0] += 1.5
                assert db.get_item(TableName=TABLE, Key=key)["Item"]["plan"]["S"] == "free"  # caught up
            assert reads.missed == 2
            db.put_item(TableName=TABLE, Item=item("key#k2", "-"))
            assert "Item" in db.get_item(
                TableName=TABLE, Key={"pk": {"S": "key#k2"}, "sk": {"S": "-"}}
            )  # off
        finally:
            reads.restore()
