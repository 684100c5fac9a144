"""The local stack applies IAM as AWS does: each function runs as a session of its own role, and a
call its role's statements do not allow (action, resource and conditions) is refused 403. The
stack fixture fails if any call in the suite was refused: a missing grant shows in a test."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.stack_fixtures import client_as


def refused(stack, call) -> bool:
    before = len(stack.iam.refused)
    try:
        call()
    except ClientError as error:
        code = error.response["Error"]["Code"]
        denied = code in ("AccessDenied", "AccessDeniedException", "403")
        del stack.iam.refused[before:]  # refused on purpose: not a missing grant
        return denied
    return False


def test_a_role_may_do_what_its_statements_allow_and_nothing_else(stack):
    usage, tasks = stack.physical["UsageTable"], stack.physical["TasksTable"]
    dynamodb = client_as(stack, "MeterFunction", "dynamodb")

    def count(key: str):
        return lambda: dynamodb.update_item(
            TableName=usage,
            Key={"pk": {"S": key}, "sk": {"S": "iam-test"}},
            UpdateExpression="ADD calls :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )

    assert not refused(stack, count("usage#iam-test"))  # its grant: partition keys usage#*, call#*
    assert refused(stack, count("key#iam-test"))  # dynamodb:LeadingKeys outside the grant
    assert refused(stack, lambda: dynamodb.get_item(TableName=tasks, Key={"task_id": {"S": "x"}}))
    assert refused(
        stack, lambda: dynamodb.delete_item(TableName=usage, Key={"pk": {"S": "usage#x"}, "sk": {"S": "x"}})
    )
    sqs = client_as(stack, "MeterFunction", "sqs")
    assert refused(stack, lambda: sqs.send_message(QueueUrl=stack.physical["TaskQueue"], MessageBody="{}"))


def test_a_function_cannot_list_or_write_outside_its_prefixes(stack):
    s3 = client_as(stack, "NotifyFunction", "s3")
    bucket = stack.physical["ResultsBucket"]
    assert refused(stack, lambda: s3.list_objects_v2(Bucket=bucket))
    assert refused(stack, lambda: s3.put_object(Bucket=bucket, Key="tasks/x/image.png", Body=b"x"))
    with pytest.raises(ClientError) as missing:  # may read tasks/*: a missing key is a 403
        s3.get_object(Bucket=bucket, Key="tasks/none/image.png")
    assert missing.value.response["Error"]["Code"] == "AccessDenied"
    stack.iam.refused.clear()


def test_the_key_authorizer_may_write_a_keys_last_use_and_nothing_else_of_it(stack):
    """dynamodb:Attributes: every attribute an update reads, writes or tests, the key's own too."""
    dynamodb = client_as(stack, "KeyAuthorizerFunction", "dynamodb")
    made = stack.key_store().create("iam-test", "starter")
    key = {"pk": {"S": f"key#{made.key.key_id}"}, "sk": {"S": "-"}}

    def update(expression: str, **extra):
        return lambda: dynamodb.update_item(
            TableName=stack.physical["UsageTable"],
            Key=key,
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":v": {"S": "2026-11-29"}},
            **extra,
        )

    assert not refused(stack, update("SET last_used = :v"))  # KeyStore.mark_used's write
    assert refused(stack, update("SET #p = :v", ExpressionAttributeNames={"#p": "plan"}))
    assert refused(stack, update("SET last_used = :v, enabled = :v"))
    assert refused(stack, update("SET last_used = :v", ReturnValues="ALL_OLD"))
