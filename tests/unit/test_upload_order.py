"""Two uploads to the same incoming/ key whose notifications arrive newest first: the newest put
wins (S3's sequencer orders them), the older one's task ends at once and never stores a result."""

from __future__ import annotations

import json

import boto3
import pytest
from alphacut.aws import clients
from alphacut.aws.tasks.dispatch import Dispatcher, put_order, upload_task_id, uploads_in
from alphacut.aws.tasks.table import TaskTable
from alphacut.task_states import TaskState
from moto import mock_aws

KEY = "incoming/shoe.png"


@pytest.fixture
def aws(monkeypatch):
    for name, value in (
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "x"),
        ("AWS_SECRET_ACCESS_KEY", "x"),
    ):
        monkeypatch.setenv(name, value)
    clients.client.cache_clear()  # clients made inside the mock
    with mock_aws():
        boto3.client("s3").create_bucket(
            Bucket="uploads", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        boto3.client("dynamodb").create_table(
            TableName="tasks",
            KeySchema=[{"AttributeName": "task_id", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "task_id", "AttributeType": "S"},
                {"AttributeName": "source_key", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[{
                "IndexName": "by_source_key",
                "KeySchema": [{"AttributeName": "source_key", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }],
            BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip
        machine = boto3.client("stepfunctions").create_state_machine(
            name="tasks",
            definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/tasks",
        )["stateMachineArn"]
        yield Dispatcher(TaskTable("tasks"), machine, "uploads", "results", max_bytes=10**6)
    clients.client.cache_clear()


def notification(sequencer: str, etag: str) -> dict:
    stored = {"key": KEY, "eTag": etag, "sequencer": sequencer, "size": 10}
    return {"body": json.dumps({"Records": [{"s3": {"bucket": {"name": "uploads"}, "object": stored}}]})}


def test_the_older_upload_notified_last_ends_superseded_and_the_newer_runs(aws):
    s3 = boto3.client("s3")
    s3.put_object(Bucket="uploads", Key=KEY, Body=b"older photo")
    s3.put_object(Bucket="uploads", Key=KEY, Body=b"newer photo")
    older, newer = notification("005B3A9E0C1F2D0001", "e-old"), notification("005B3A9E0C1F2D0002", "e-new")
    aws.handle_record(newer)  # the newer put's notification comes first
    aws.handle_record(older)
    (new_upload,) = uploads_in(json.loads(newer["body"]))
    (old_upload,) = uploads_in(json.loads(older["body"]))
    started = aws.table.get(upload_task_id(new_upload))
    ended = aws.table.get(upload_task_id(old_upload))
    assert started.state is TaskState.QUEUED  # its execution started: the Segment step will run
    assert ended.state is TaskState.FAILED and ended.extra.get("error_name") == "SupersededUpload"
    executions = boto3.client("stepfunctions").list_executions(stateMachineArn=aws.state_machine_arn)
    assert [e["name"] for e in executions["executions"]] == [started.task_id]


def test_a_running_upload_overtaken_by_a_newer_put_is_told_not_to_store(aws):
    table = aws.table
    assert table.note_put(KEY, put_order("0A")) and table.note_put(KEY, put_order("0A"))  # a repeat
    assert not table.superseded(KEY, put_order("0A"))
    assert table.note_put(KEY, put_order("1B0"))  # a newer put, notified while 0A's model ran
    assert table.superseded(KEY, put_order("0A")) and not table.superseded(KEY, put_order("1B0"))
    assert not table.note_put(KEY, put_order("FF"))  # shorter sequencers are smaller (padded)
