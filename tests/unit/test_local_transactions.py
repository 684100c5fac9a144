"""The local stack's rollback of a failed DynamoDB transaction (a journal of the items it touches,
in place of moto's deep copy of each whole table): every item ends as it was, and a transaction
that succeeds applies all of its writes."""

from __future__ import annotations

import boto3
import pytest
from alphacut_dev.local.dynamodb_consistency import journalled_transaction
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

TABLE = "usage"


@pytest.fixture
def dynamodb(monkeypatch):
    original = DynamoDBBackend.transact_write_items
    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", journalled_transaction(original))
    monkeypatch.setattr(Table, "__deepcopy__", lambda table, memo: table, raising=False)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(TableName=TABLE, Item={"pk": {"S": "count"}, "sk": {"S": "day"}, "n": {"N": "1"}})
        client.put_item(TableName=TABLE, Item={"pk": {"S": "marker"}, "sk": {"S": "call-1"}})
        yield client


def _writes(marker: str) -> list[dict]:
    return [
        {
            "Update": {
                "TableName": TABLE,
                "Key": {"pk": {"S": "count"}, "sk": {"S": "day"}},
                "UpdateExpression": "ADD n :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        },
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "new"}, "sk": {"S": "item"}}}},
        {
            "Put": {
                "TableName": TABLE,
                "Item": {"pk": {"S": "marker"}, "sk": {"S": marker}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
    ]


def _item(client, pk: str, sk: str) -> dict | None:
    return client.get_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")


def test_a_failed_transaction_leaves_every_item_as_it_was(dynamodb):
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=_writes("call-1"))  # the marker exists: refused
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _item(dynamodb, "count", "day")["n"] == {"N": "1"}
    assert _item(dynamodb, "new", "item") is None


def test_a_transaction_that_succeeds_applies_all_its_writes(dynamodb):
    dynamodb.transact_write_items(TransactItems=_writes("call-2"))
    assert _item(dynamodb, "count", "day")["n"] == {"N": "2"}
    assert _item(dynamodb, "new", "item") is not None and _item(dynamodb, "marker", "call-2") is not None
