"""Lifetimes AWS applies and moto does not, emulated by the local stack (``stack.expiry``: S3
lifecycle rules and DynamoDB TTL, run with a clock moved ahead; ``stack.aws_rules``: S3's put
sequencers and Step Functions' 90-day name window): a done task answers its results for as long
as it says it is done, a result that is gone is a 410 ``result_expired``, and a new put of the
same bytes is a new task that runs."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
import requests
from alphacut.aws.tasks.table import TaskRecord, TaskTable
from alphacut.errors import NotFound
from alphacut.task_states import TaskState

from tests.e2e.test_tasks import submit, wait_final

DAY = 86400


def _task_keys(stack, task_id: str) -> list[str]:
    listed = stack.client("s3").list_objects_v2(
        Bucket=stack.physical["ResultsBucket"], Prefix=f"tasks/{task_id}"
    )
    return [item["Key"] for item in listed.get("Contents", [])]


def test_a_done_task_answers_its_results_until_its_record_expires(api, stack, photo):
    task_id = submit(api, photo, output="both")
    assert wait_final(api, task_id)["state"] == 1
    stack.expiry.run(now=time.time() + 2 * DAY)  # past the one day every result used to get
    assert len(_task_keys(stack, task_id)) == 2
    data = api.get(f"/v1/tasks/{task_id}", params={"return_type": "base64"}).json()["data"]
    assert base64.b64decode(data["image"])[:4] == b"\x89PNG"
    linked = api.get(f"/v1/tasks/{task_id}").json()["data"]["image"]
    assert requests.get(linked, timeout=30).status_code == 200
    stack.expiry.run(now=time.time() + 7 * DAY + 3600)  # the record's TTL has passed
    assert api.get(f"/v1/tasks/{task_id}").status_code == 404
    stack.expiry.run(now=time.time() + 9 * DAY)
    assert _task_keys(stack, task_id) == []


def test_a_done_task_whose_result_is_gone_answers_410_result_expired(api, stack, photo):
    task_id = submit(api, photo)
    assert wait_final(api, task_id)["state"] == 1
    link = api.get(f"/v1/tasks/{task_id}").json()["data"]["image"]
    for key in _task_keys(stack, task_id):
        stack.client("s3").delete_object(Bucket=stack.physical["ResultsBucket"], Key=key)
    for return_type in ("base64", "url"):
        answer = api.get(f"/v1/tasks/{task_id}", params={"return_type": return_type})
        assert answer.status_code == 410, answer.text
        error = answer.json()["error"]
        assert error["code"] == "result_expired" and task_id in error["message"]
    followed = requests.get(link, allow_redirects=False, timeout=30)
    assert followed.status_code == 410 and followed.json()["error"]["code"] == "result_expired"


def test_a_replay_whose_stored_answer_is_gone_answers_410_result_expired(api, stack, photo):
    headers = {"Idempotency-Key": f"lifetimes-{uuid.uuid4()}", "Content-Type": "image/jpeg"}
    first = api.post("/v1/cutout", data=photo, headers=headers)
    assert first.status_code == 200
    s3 = stack.client("s3")
    bucket = stack.physical["ResultsBucket"]
    for item in s3.list_objects_v2(Bucket=bucket, Prefix="idempotency/").get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    replay = api.post("/v1/cutout", data=photo, headers=headers)
    assert replay.status_code == 410 and replay.json()["error"]["code"] == "result_expired"
    assert replay.headers["X-Alphacut-Charge"] == "false"


def _upload_task(stack, key: str, exclude: set[str], timeout: float = 90) -> TaskRecord:
    """The final task of the newest put of ``key`` other than those in ``exclude``."""
    table = TaskTable(stack.physical["TasksTable"], stack.resource("dynamodb"))
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            record = table.by_source_key(key)
        except NotFound:
            record = None
        if record is not None and record.task_id not in exclude and record.state.is_final:
            return record
        time.sleep(0.3)
    pytest.fail(f"no new final task for {key} in {timeout} s")


def test_the_same_bytes_put_again_after_the_task_expired_are_a_new_task_that_runs(stack, photo):
    """Between day 7 (the task record's TTL) and day 90 (Step Functions' name window) a second put
    of the same bytes used to make a task named like the closed execution: queued for ever."""
    s3, bucket, key = (
        stack.client("s3"),
        stack.physical["UploadsBucket"],
        f"incoming/again/{uuid.uuid4()}.jpg",
    )
    s3.put_object(Bucket=bucket, Key=key, Body=photo)
    first = _upload_task(stack, key, set())
    assert first.state is TaskState.DONE
    stack.client("dynamodb").delete_item(  # what DynamoDB's TTL does after 7 days
        TableName=stack.physical["TasksTable"], Key={"task_id": {"S": first.task_id}}
    )
    s3.put_object(Bucket=bucket, Key=key, Body=photo)
    second = _upload_task(stack, key, {first.task_id})
    assert second.state is TaskState.DONE and second.task_id != first.task_id


def test_a_queued_task_whose_execution_name_is_taken_by_a_closed_execution_ends_failed(api, stack, photo):
    done = submit(api, photo)
    assert wait_final(api, done)["state"] == 1
    time.sleep(1.5)  # the dispatch that started it has seen it final and returned
    table = TaskTable(stack.physical["TasksTable"], stack.resource("dynamodb"))
    record = table.get(done)
    stack.client("dynamodb").delete_item(TableName=stack.physical["TasksTable"], Key={"task_id": {"S": done}})
    table.create(
        TaskRecord(task_id=done, owner=record.owner, options=record.options, input_key=record.input_key)
    )
    stack.client("sqs").send_message(
        QueueUrl=stack.physical["TaskQueue"], MessageBody=json.dumps({"task_id": done})
    )
    deadline = time.time() + 30
    while (ended := table.get(done)).state is TaskState.QUEUED:
        assert time.time() < deadline, "the task stayed queued"
        time.sleep(0.2)
    assert ended.state is TaskState.FAILED and ended.extra["error_name"] == "ExecutionNameTaken"


def test_step_functions_refuses_a_closed_name_for_90_days_then_takes_it(stack):
    sfn, machine = stack.client("stepfunctions"), stack.physical["TaskStateMachine"]
    name = f"window-{uuid.uuid4()}"
    arn = sfn.start_execution(stateMachineArn=machine, name=name, input="{}")["executionArn"]
    again = sfn.start_execution(stateMachineArn=machine, name=name, input="{}")["executionArn"]
    assert again == arn  # running, same input: the same execution
    sfn.stop_execution(executionArn=arn, cause="closed by the test")
    deadline = time.time() + 30
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":  # a stop takes effect soon after
        assert time.time() < deadline
        time.sleep(0.1)
    with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
        sfn.start_execution(stateMachineArn=machine, name=name, input="{}")
    real_clock = stack.aws_rules.clock
    stack.aws_rules.clock = lambda: real_clock() + 91 * DAY
    try:
        sfn.start_execution(stateMachineArn=machine, name=name, input="{}")
    finally:
        stack.aws_rules.clock = real_clock


def test_s3_answers_a_missing_key_403_to_a_role_that_may_not_list_the_bucket(stack):
    """As on AWS: each function runs as its role (alphacut_dev.local.iam), which may read its
    prefixes but not list the bucket, so S3 will not say a key is missing: 403, not 404. The
    stack's own credentials may list: 404."""
    from botocore.exceptions import ClientError

    from tests.stack_fixtures import client_as

    as_function = client_as(stack, "TasksFunction", "s3")
    env = stack.workers["TasksFunction"].spec.environment
    assert env["AWS_ACCESS_KEY_ID"] != stack.aws_env()["AWS_ACCESS_KEY_ID"]
    bucket, key = stack.physical["ResultsBucket"], "tasks/no-such-task/image.png"
    with pytest.raises(ClientError) as read:
        as_function.get_object(Bucket=bucket, Key=key)
    assert read.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as head:
        as_function.head_object(Bucket=bucket, Key=key)
    assert head.value.response["Error"]["Code"] == "403"
    with pytest.raises(ClientError) as listed:
        stack.client("s3").get_object(Bucket=bucket, Key=key)
    assert listed.value.response["Error"]["Code"] == "NoSuchKey"


def test_an_execution_stopped_inside_a_step_ends_aborted_and_refuses_its_task_token(stack):
    """AWS ends a stopped execution ABORTED at once, whatever its running step does next, and
    refuses its task token; moto kept it RUNNING until the step returned, then FAILED."""
    from botocore.exceptions import ClientError

    sfn, sqs = stack.client("stepfunctions"), stack.client("sqs")
    queue = sqs.create_queue(QueueName=f"stop-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    definition = {
        "StartAt": "Wait for a token",
        "States": {
            "Wait for a token": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name=f"stop-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/stop-test",
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    deadline = time.time() + 30
    while not (messages := sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages")):
        assert time.time() < deadline  # until the execution is in its step
    sfn.stop_execution(executionArn=arn, cause="stopped by the test")
    deadline = time.time() + 5  # AWS: at once; moto: when the step returned (never, here)
    while (status := sfn.describe_execution(executionArn=arn)["status"]) == "RUNNING":
        assert time.time() < deadline
        time.sleep(0.1)
    assert status == "ABORTED"
    token = json.loads(messages[0]["Body"])["token"]
    for answer in (
        lambda: sfn.send_task_success(taskToken=token, output="{}"),
        lambda: sfn.send_task_failure(taskToken=token, error="Late", cause="after the stop"),
    ):
        with pytest.raises(ClientError) as refused:
            answer()
        assert refused.value.response["Error"]["Code"] in ("TaskTimedOut", "InvalidToken")
    time.sleep(1)
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
