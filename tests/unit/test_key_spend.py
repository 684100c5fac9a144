"""A key's daily spending against moto's DynamoDB: a write that lands and whose answer is lost is
never sent again (the SDK's retry would count it twice), one refused unapplied is; and the local
stack's transaction tokens (a retried transaction writes once)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest
from alphacut.aws.ledger.key_spend import KeySpend
from alphacut_dev.local.dynamodb_transactions import TOKEN_SECONDS, TransactionTokens
from alphacut_dev.local.patches import MotoPatches
from botocore.exceptions import ClientError

from tests.unit.moto_table import usage_table

TABLE = "usage"


@pytest.fixture
def tokens(monkeypatch):
    with usage_table(monkeypatch, TABLE):
        rule = TransactionTokens()
        rule.apply()
        try:
            yield rule
        finally:
            rule.restore()


@contextmanager
def answers_lost(count: int = 1) -> Iterator[list[str]]:
    """The next ``count`` writes land and then answer 500 (a lost answer, which the SDK retries);
    undone before the fixture's rules are."""
    from moto.core.exceptions import JsonRESTError
    from moto.dynamodb.responses import DynamoHandler

    sent: list[str] = []

    def losing(name, original):
        def write(handler):
            answer = original(handler)
            sent.append(name)
            if len(sent) <= count:
                error = JsonRESTError("InternalServerError", "the write landed; its answer was lost")
                error.code = 500
                raise error
            return answer

        return write

    class LostAnswers(MotoPatches):
        def apply(self) -> None:
            for name in ("update_item", "transact_write_items"):
                self._patch(DynamoHandler, name, losing(name, getattr(DynamoHandler, name)))

    rule = LostAnswers()
    rule.apply()
    try:
        yield sent
    finally:
        rule.restore()


def test_a_spending_write_whose_answer_was_lost_is_never_sent_again_and_counts_once(tokens):
    spend = KeySpend(TABLE)
    with answers_lost() as sent, pytest.raises(ClientError, match="InternalServerError"):
        spend.spend("plugin", 1000, limit=5000)
    assert len(sent) == 1  # the SDK did not send it again: the call fails, its price counted once
    assert spend.today(["plugin"]) == {"plugin": 1000}


def test_a_give_back_whose_answer_was_lost_gives_back_once(tokens):
    spend = KeySpend(TABLE)
    day, _ = spend.spend("plugin", 1000, limit=None)
    spend.spend("plugin", 1000, limit=None)
    with answers_lost() as sent:
        spend.give_back("plugin", day, 1000)  # said in the log, not raised: the call has ended
    assert len(sent) == 1 and spend.today(["plugin"]) == {"plugin": 1000}


def test_a_spending_write_refused_unapplied_for_throughput_is_sent_again(tokens):
    from moto.core.exceptions import JsonRESTError
    from moto.dynamodb.responses import DynamoHandler

    tries: list[int] = []

    class ThrottledOnce(MotoPatches):  # undone before the fixture's rules are
        def apply(self) -> None:
            original = DynamoHandler.update_item

            def update_item(handler):
                tries.append(1)
                if len(tries) == 1:  # refused before anything is written
                    raise JsonRESTError(
                        "ProvisionedThroughputExceededException", "the partition is over its rate"
                    )
                return original(handler)

            self._patch(DynamoHandler, "update_item", update_item)

    rule = ThrottledOnce()
    rule.apply()
    try:
        assert KeySpend(TABLE).spend("plugin", 1000, limit=5000)[1] == 1000 and len(tries) == 2
    finally:
        rule.restore()


def test_a_token_sent_with_other_items_is_refused_and_forgotten_after_ten_minutes(tokens):
    now = [1000.0]
    tokens.clock = lambda: now[0]
    db = boto3.client("dynamodb")

    def add(amount: int) -> None:
        db.transact_write_items(
            ClientRequestToken="call-7",
            TransactItems=[
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"pk": {"S": "spend#k"}, "sk": {"S": "d"}},
                        "UpdateExpression": "ADD spent :n",
                        "ExpressionAttributeValues": {":n": {"N": str(amount)}},
                    }
                }
            ],
        )

    add(5)
    add(5)
    with pytest.raises(ClientError, match="IdempotentParameterMismatch"):
        add(6)
    now[0] += TOKEN_SECONDS
    add(5)
    item = db.get_item(TableName=TABLE, Key={"pk": {"S": "spend#k"}, "sk": {"S": "d"}})["Item"]
    assert item["spent"]["N"] == "10" and tokens.replays == 1
