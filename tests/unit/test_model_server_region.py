"""The model server marks its task processing with no AWS_REGION in its environment, as SageMaker
hosting may start it: the table's region comes from TASKS_TABLE_REGION, which the template sets."""

from __future__ import annotations

import importlib.util

import boto3
from alphacut.task_states import TaskState
from alphacut_dev.template import ROOT, load_sam
from moto import mock_aws


def load_server():
    spec = importlib.util.spec_from_file_location("alphacut_serve", ROOT / "sagemaker" / "serve.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_waiting_task_becomes_processing_without_aws_region_in_the_environment(monkeypatch):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("TASKS_TABLE", "tasks")
    monkeypatch.setenv("TASKS_TABLE_REGION", "eu-west-1")
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name="eu-west-1")
        table = dynamodb.create_table(
            TableName="tasks",
            KeySchema=[{"AttributeName": "task_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "task_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        table.put_item(Item={"task_id": "t1", "state": int(TaskState.WAITING)})
        load_server().mark_started("t1")
        assert table.get_item(Key={"task_id": "t1"})["Item"]["state"] == int(TaskState.PROCESSING)


def test_the_template_gives_the_container_its_region():
    environment = load_sam()["Resources"]["SegmentModel"]["Properties"]["PrimaryContainer"]["Environment"]
    assert environment["TASKS_TABLE_REGION"] == {"Ref": "AWS::Region"}
