"""``clients.batch_get`` against moto with the local stack's DynamoDB capacity rule: a partition
past its read rate leaves its keys in ``UnprocessedKeys`` (the others are read), and batch_get asks
again after growing, jittered waits, then gives up with a 503 that says when to come back."""

from __future__ import annotations

import time

import pytest
from alphacut.aws import clients
from alphacut.errors import ServiceBusy, http_status
from alphacut_dev.local.dynamodb_capacity import DynamoDBCapacity

from tests.unit.moto_table import unretried_table

TABLE = "usage"


@pytest.fixture
def dynamodb(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with unretried_table(TABLE) as db:
        for pk in ("hot", "cold"):
            db.put_item(TableName=TABLE, Item={"pk": {"S": pk}, "sk": {"S": "balance"}})
        yield db


@pytest.fixture
def clock(monkeypatch):
    """The capacity rule's clock, and the waits batch_get takes (each moves the clock when
    ``moving``); more than 20 waits is asking for ever."""
    state = {"now": 1000.0, "waits": [], "moving": True}

    def sleep(seconds: float) -> None:
        state["waits"].append(seconds)
        assert len(state["waits"]) <= 20, "batch_get asks for ever"
        if state["moving"]:
            state["now"] += seconds

    monkeypatch.setattr(time, "sleep", sleep)
    capacity = DynamoDBCapacity(clock=lambda: state["now"], read_limit=1.0)  # 1 read unit a second
    capacity.apply()
    yield state
    capacity.restore()


KEYS = [{"pk": {"S": pk}, "sk": {"S": "balance"}} for pk in ("hot", "cold")]


def spend_the_hot_partition(db) -> None:
    db.get_item(TableName=TABLE, Key=KEYS[0], ConsistentRead=True)  # its one unit of the second


def test_a_partition_past_its_rate_leaves_its_keys_unprocessed_and_the_others_are_read(dynamodb, clock):
    spend_the_hot_partition(dynamodb)
    answer = dynamodb.batch_get_item(RequestItems={TABLE: {"Keys": KEYS, "ConsistentRead": True}})
    assert [item["pk"]["S"] for item in answer["Responses"][TABLE]] == ["cold"]
    assert answer["UnprocessedKeys"] == {TABLE: {"Keys": [KEYS[0]], "ConsistentRead": True}}


def test_batch_get_asks_again_for_the_keys_left_once_the_partition_has_room(dynamodb, clock):
    spend_the_hot_partition(dynamodb)
    items = list(clients.batch_get(dynamodb, TABLE, KEYS, consistent=True))
    assert sorted(item["pk"]["S"] for item in items) == ["cold", "hot"]
    assert len(clock["waits"]) == 1 and 0.025 <= clock["waits"][0] <= 0.05


def test_batch_get_waits_longer_each_time_keys_are_left_then_answers_503(dynamodb, clock):
    clock["moving"] = False  # the partition never refills
    spend_the_hot_partition(dynamodb)
    with pytest.raises(ServiceBusy) as busy:
        list(clients.batch_get(dynamodb, TABLE, KEYS, consistent=True))
    waits = clock["waits"]
    ceilings = [0.05, 0.1, 0.2, 0.4, 0.8, 0.8]  # doubling, then held: 7 asks in all
    assert len(waits) == len(ceilings)
    assert all(ceiling / 2 <= wait <= ceiling for wait, ceiling in zip(waits, ceilings, strict=True))
    assert (
        len({round(wait / ceiling, 6) for wait, ceiling in zip(waits, ceilings, strict=True)}) > 1
    )  # jittered
    assert http_status(busy.value) == 503 and busy.value.retry_after == 1 and busy.value.limit == 7
    assert busy.value.to_dict()["code"] == "service_busy"
