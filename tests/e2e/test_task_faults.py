"""Every task final, every charge exactly once, under faults made on purpose on the local stack:
dead-lettered messages, executions stopped by hand, a FailTask step that fails for good, a retry
after an applied write, a step that finishes after its task ended, a charge write that fails,
and the fault benchmark's small run (a kill, a stop, a poison message, duplicated messages).
Every test runs on both paths: the CPU (the endpoint cold) and the GPU endpoint's (warm). The
tasks belong to credit-based keys: the credits reserved at submission are settled at every end
(``settled``: no hold left, the balance down by exactly the tasks charged)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import uuid

import pytest
from alphacut.api.credits import TASK_HOLD_SECONDS
from alphacut.aws.ledger.credits import CreditLedger
from alphacut.aws.ledger.usage import UsageMeter, task_hold
from alphacut.aws.tasks.dispatch import Upload, upload_task_id
from alphacut.aws.tasks.finalize import TaskFinalizer
from alphacut.aws.tasks.segment_step import LocalMatting, TaskNoLongerRunning, run_segment_step
from alphacut.aws.tasks.service import step_input
from alphacut.aws.tasks.table import TaskRecord, TaskTable
from alphacut.errors import NotFound
from alphacut.options import CutoutOptions
from alphacut.task_states import TaskState
from alphacut_dev.local.account import ACCOUNT, REGION
from alphacut_dev.local.stack import STACK_NAME
from alphacut_dev.template import ROOT

from tests.stack_fixtures import credit_key, dynamodb_fault, pinned_path, with_path

FINAL_WAIT = 90


@pytest.fixture(scope="module", autouse=True)
def aws_env(stack):
    """The adapters' own boto3 clients (alphacut.aws.clients) reach the stack's moto."""
    os.environ.update(stack.aws_env())


@pytest.fixture(params=["cpu", "gpu"])
def model_path(request, stack):
    """Both task paths, for the faults whose steps differ between them (processing, a stopped
    execution, a task taken twice)."""
    pinned_path(stack, request.param)
    yield request.param
    stack.endpoint.pin(None)


@pytest.fixture(autouse=True)
def one_path_unless_asked(request, stack):
    """The other faults live in steps both paths share (the dead-letter queue, the ending steps,
    the charge, the status rule): they run once, on the CPU path."""
    if "model_path" in request.fixturenames:
        yield
        return
    pinned_path(stack, "cpu")
    yield
    stack.endpoint.pin(None)


def tasks_table(stack) -> TaskTable:
    return TaskTable(stack.physical["TasksTable"], stack.resource("dynamodb"))


def execution_arn(task_id: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{STACK_NAME}-TaskStateMachine:{task_id}"


def wait_for(
    stack,
    task_id: str,
    done=lambda r: r.state.is_final,
    timeout: float = FINAL_WAIT,
    missing_ok: bool = False,
) -> TaskRecord:
    """The task once ``done`` holds; ``missing_ok``: it may not exist yet (a message not yet read)."""
    table = tasks_table(stack)
    deadline, record = time.time() + timeout, None
    while time.time() < deadline:
        try:
            record = table.get(task_id)
        except NotFound:
            if not missing_ok:
                raise
        if record is not None and done(record):
            return record
        time.sleep(0.05)
    pytest.fail(f"task {task_id} did not get there in {timeout} s: {record}")


def submit(api, photo: bytes) -> str:
    answer = api.post("/v1/tasks", files={"image_file": ("p.jpg", photo, "image/jpeg")})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]["task_id"]


def queued_task(
    stack,
    photo: bytes,
    state: TaskState = TaskState.QUEUED,
    task_id: str = "",
    owner: str = "fault-tests",
    **extra,
) -> TaskRecord:
    """A task as POST /v1/tasks leaves it (input in S3, record in DynamoDB, a credit-based
    ``owner``'s credit reserved), without its message."""
    task_id = task_id or f"fault-{uuid.uuid4()}"
    if owner != "fault-tests":
        ledger(stack).reserve(owner, task_hold(task_id), 1000, TASK_HOLD_SECONDS)
    record = TaskRecord(
        task_id=task_id,
        owner=owner,
        options=CutoutOptions().to_dict(),
        input_key=f"tasks/{task_id}/input",
        state=state,
        extra=dict(extra),
    )
    stack.client("s3").put_object(Bucket=stack.physical["UploadsBucket"], Key=record.input_key, Body=photo)
    assert tasks_table(stack).create(record)
    return record


def charged(stack, task_id: str) -> bool:
    return UsageMeter(stack.physical["UsageTable"]).is_charged(task_id)


def ledger(stack) -> CreditLedger:
    return CreditLedger(stack.physical["UsageTable"])


def settled(stack, key_id: str, start: float, charged_tasks: int, holds_left: int = 0) -> None:
    """The key's tasks are settled: no reservation left (but ``holds_left``), and the balance down
    by exactly one credit per task charged."""
    deadline = time.time() + 30
    while len(ledger(stack).holds(key_id)) > holds_left and time.time() < deadline:
        time.sleep(0.2)
    assert len(ledger(stack).holds(key_id)) == holds_left
    assert ledger(stack).balance(key_id) == round((start - charged_tasks) * 1000)


def test_a_task_whose_message_reaches_the_dead_letter_queue_ends_failed(admin, stack, photo):
    owner = credit_key(admin, stack, "1").key_id
    record = queued_task(stack, photo, owner=owner)
    upload = {
        "Records": [
            {
                "s3": {
                    "bucket": {"name": stack.physical["UploadsBucket"]},
                    "object": {"key": "incoming/never+started.jpg", "eTag": "abc"},
                }
            }
        ]
    }
    sqs = stack.client("sqs")
    for body in (json.dumps({"task_id": record.task_id}), json.dumps(upload), "not json"):
        sqs.send_message(QueueUrl=stack.physical["TaskDeadLetterQueue"], MessageBody=body)
    ended = wait_for(stack, record.task_id)
    assert ended.state is TaskState.FAILED and ended.extra["error_name"] == "DispatchFailed"
    upload_id = upload_task_id(Upload(stack.physical["UploadsBucket"], "incoming/never started.jpg", "abc"))
    upload_task = wait_for(stack, upload_id, missing_ok=True)
    assert upload_task.state is TaskState.FAILED  # the upload became a task only to be ended
    time.sleep(2)  # the garbage message is consumed too: the dead-letter queue drains
    left = sqs.get_queue_attributes(
        QueueUrl=stack.physical["TaskDeadLetterQueue"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert left["ApproximateNumberOfMessages"] == "0"
    settled(stack, owner, 1, 0)  # ended failed: its credit given back


def test_a_dead_letter_never_ends_a_task_that_is_running_or_final(stack, photo):
    running = queued_task(stack, photo, TaskState.PROCESSING)
    finished = queued_task(stack, photo, TaskState.DONE)
    finalizer = TaskFinalizer(tasks_table(stack), None)
    for record in (running, finished):
        assert finalizer.dead_letter({"body": json.dumps({"task_id": record.task_id})}) == "not_queued"
    assert tasks_table(stack).get(running.task_id).state is TaskState.PROCESSING
    assert tasks_table(stack).get(finished.task_id).state is TaskState.DONE


def test_an_execution_stopped_by_hand_ends_its_task_failed_and_uncharged(admin, stack, photo, model_path):
    api = credit_key(admin, stack, "1")
    task_id = submit(api, photo)
    wait_for(stack, task_id, lambda r: r.state in (TaskState.WAITING, TaskState.PROCESSING))
    stack.client("stepfunctions").stop_execution(executionArn=execution_arn(task_id), cause="by hand")
    ended = wait_for(stack, task_id)
    assert ended.state is TaskState.FAILED and ended.extra["error_name"] == "ExecutionAborted"
    time.sleep(2)
    assert not charged(stack, task_id)
    assert api.get(f"/v1/tasks/{task_id}").json()["data"]["state"] == -1
    settled(stack, api.key_id, 1, 0)


@pytest.mark.slow
def test_a_fail_task_step_that_fails_for_good_is_ended_by_the_status_rule(admin, stack, photo):
    """FailTask has no Catch for its own failure: its execution fails, and the EventBridge rule
    on that status ends the task."""
    api = credit_key(admin, stack, "1")
    # FailTask's write (its error's name), not the finalizer's (ExecutionFailed)
    failing = lambda call: "error_cause" in call and "ExecutionFailed" not in call
    with dynamodb_fault("update_item", failing, times=1000) as refused:
        task_id = submit(api, photo[:300])  # a corrupt image: Segment fails, FailTask is refused
        ended = wait_for(stack, task_id, timeout=120)
    assert len(refused) >= 6  # the first write and its five retries
    assert ended.state is TaskState.FAILED and ended.extra["error_name"] == "ExecutionFailed"
    status = stack.client("stepfunctions").describe_execution(executionArn=execution_arn(task_id))["status"]
    assert status == "FAILED"
    settled(stack, api.key_id, 1, 0)


def test_mark_processing_retried_after_its_write_was_applied_goes_on(admin, stack, photo, model_path):
    """The first attempt's write reached the table but answered with an error: the retry finds
    the task taken by its own execution and carries on instead of ending as 'already taken'."""
    task_id = f"fault-{uuid.uuid4()}"
    owner = credit_key(admin, stack, "1").key_id
    record = queued_task(
        stack, photo, TaskState.PROCESSING, task_id, owner=owner, execution_id=execution_arn(task_id)
    )
    step = with_path(
        step_input(record, stack.physical["UploadsBucket"], stack.physical["ResultsBucket"]), model_path
    )
    stack.client("stepfunctions").start_execution(
        stateMachineArn=stack.physical["TaskStateMachine"], name=record.task_id, input=json.dumps(step)
    )
    assert wait_for(stack, record.task_id).state is TaskState.DONE
    settled(stack, owner, 1, 1)


def test_a_task_taken_by_another_execution_is_not_processed_again(stack, photo, model_path):
    record = queued_task(stack, photo, TaskState.PROCESSING, execution_id=execution_arn("someone-else"))
    step = with_path(
        step_input(record, stack.physical["UploadsBucket"], stack.physical["ResultsBucket"]), model_path
    )
    sfn = stack.client("stepfunctions")
    sfn.start_execution(
        stateMachineArn=stack.physical["TaskStateMachine"], name=record.task_id, input=json.dumps(step)
    )
    deadline = time.time() + 30
    while sfn.describe_execution(executionArn=execution_arn(record.task_id))["status"] == "RUNNING":
        assert time.time() < deadline
        time.sleep(0.2)
    assert tasks_table(stack).get(record.task_id).state is TaskState.PROCESSING


def test_a_segment_step_that_ends_after_its_task_stores_nothing(stack, pipeline, photo):
    record = queued_task(stack, photo, TaskState.TIMED_OUT)
    step = step_input(record, stack.physical["UploadsBucket"], stack.physical["ResultsBucket"])
    s3 = stack.client("s3")
    with pytest.raises(TaskNoLongerRunning):
        run_segment_step(step, pipeline, LocalMatting(), s3=s3, tasks=tasks_table(stack))
    listed = s3.list_objects_v2(Bucket=step["result_bucket"], Prefix=f"tasks/{record.task_id}")
    assert listed.get("KeyCount", 0) == 0


def test_a_charge_whose_write_fails_is_retried_and_charged_once(admin, stack, photo):
    """The charge's write is refused once: the step is retried, and the key is charged once."""
    api = credit_key(admin, stack, "2")
    key_id = api.get("/v1/usage").json()["key_id"]
    with dynamodb_fault("transact_write_items", lambda call: f"usage#{key_id}" in call) as refused:
        task_id = submit(api, photo)
        assert wait_for(stack, task_id).state is TaskState.DONE
        deadline = time.time() + 30
        while not charged(stack, task_id):
            assert time.time() < deadline, "the charge never arrived"
            time.sleep(0.3)
    assert len(refused) == 1
    time.sleep(2)
    routes = api.get("/v1/usage").json()["days"][-1]["routes"]
    assert routes["/v1/tasks"] == {"calls": 1, "charged": 1, "credits": 1}
    settled(stack, api.key_id, 2, 1)


def test_a_delivered_task_whose_charge_never_succeeds_is_recorded_unbilled(admin, stack, photo):
    owner = credit_key(admin, stack, "1").key_id
    record = queued_task(stack, photo, TaskState.DONE, owner=owner)
    finalizer = TaskFinalizer(tasks_table(stack), UsageMeter(stack.physical["UsageTable"]))
    outcome = finalizer.execution_ended(
        {
            "name": record.task_id,
            "status": "FAILED",
            "error": "ChargeFailed",
            "cause": "the task was delivered but its charge failed",
        }
    )
    assert outcome == "unbilled"
    key = {"pk": {"S": f"unbilled#{record.task_id}"}, "sk": {"S": "-"}}
    item = stack.client("dynamodb").get_item(TableName=stack.physical["UsageTable"], Key=key)
    assert item["Item"]["owner"]["S"] == owner
    assert tasks_table(stack).get(record.task_id).state is TaskState.DONE  # delivered stays delivered
    # its reservation stays until it expires (then it is given back): the operator bills it by hand
    settled(stack, owner, 1, 1, holds_left=1)


def _bench():
    spec = importlib.util.spec_from_file_location("bench_faults", ROOT / "benchmarks" / "bench_faults.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_fault_benchmark_small_run_leaves_nothing_unfinished_and_charges_exactly(admin, stack):
    pinned_path(stack, "gpu")  # the path whose model server it kills
    bench = _bench()
    api = credit_key(admin, stack, "30")
    plan = bench.Plan(tasks=20, kills=1, kill_seconds=10, stops=1, poison=2, duplicates=3, drain_timeout=300)
    report = bench.run(stack, api.key, plan, log=lambda line: None)
    print(bench.table(report, plan))
    assert len(report.submitted) == 20 and report.unfinished == []
    assert report.charged_wrongly() == []
    assert report.counted_charges == len(report.done)
    assert all(report.states[t] == -1 for t in report.poison_tasks)
    settled(stack, api.key_id, 30, report.counted_charges)


def test_an_execution_that_timed_out_ends_its_task_in_minus_8(admin, stack, photo):
    """What the status rule delivers for an execution past the machine's TimeoutSeconds."""
    owner = credit_key(admin, stack, "1").key_id
    record = queued_task(stack, photo, TaskState.PROCESSING, owner=owner)
    finalizer = TaskFinalizer(tasks_table(stack), UsageMeter(stack.physical["UsageTable"]))
    assert finalizer.execution_ended({"name": record.task_id, "status": "TIMED_OUT"}) == "ended"
    ended = tasks_table(stack).get(record.task_id)
    assert ended.state is TaskState.TIMED_OUT and ended.extra["error_name"] == "ExecutionTimedOut"
    assert finalizer.execution_ended({"name": record.task_id, "status": "FAILED"}) == "final_already"
    settled(stack, owner, 1, 0)


def test_an_execution_stopped_after_mark_done_before_its_charge_is_charged_once(admin, stack, photo):
    """The charge's write fails, and the execution is stopped by hand while Finish waits to
    retry: the task was delivered, so the status rule's finalizer charges it, once."""
    api = credit_key(admin, stack, "1")
    key_id = api.get("/v1/usage").json()["key_id"]
    with dynamodb_fault(
        "transact_write_items", lambda call: f"usage#{key_id}" in call, times=1000
    ) as refused:
        task_id = submit(api, photo)
        assert wait_for(stack, task_id).state is TaskState.DONE
        deadline = time.time() + 30
        while not refused:
            assert time.time() < deadline, "the charge was never tried"
            time.sleep(0.1)
    stack.client("stepfunctions").stop_execution(executionArn=execution_arn(task_id), cause="by hand")
    deadline = time.time() + 30
    while not charged(stack, task_id):
        assert time.time() < deadline, "the stopped execution's delivered task was never charged"
        time.sleep(0.3)
    finalizer = TaskFinalizer(tasks_table(stack), UsageMeter(stack.physical["UsageTable"]))
    assert finalizer.execution_ended({"name": task_id, "status": "ABORTED"}) == "charged_already"
    time.sleep(1)
    routes = api.get("/v1/usage").json()["days"][-1]["routes"]
    assert routes["/v1/tasks"]["charged"] == 1 and routes["/v1/tasks"]["credits"] == 1
    assert tasks_table(stack).get(task_id).state is TaskState.DONE
    settled(stack, api.key_id, 1, 1)


def test_a_delivered_task_whose_execution_ended_and_charge_fails_is_recorded_unbilled(stack, photo):
    record = queued_task(stack, photo, TaskState.DONE)
    finalizer = TaskFinalizer(tasks_table(stack), UsageMeter(stack.physical["UsageTable"]))
    with dynamodb_fault("transact_write_items", lambda call: record.task_id in call, times=10):
        assert finalizer.execution_ended({"name": record.task_id, "status": "TIMED_OUT"}) == "unbilled"
    key = {"pk": {"S": f"unbilled#{record.task_id}"}, "sk": {"S": "-"}}
    assert "Item" in stack.client("dynamodb").get_item(TableName=stack.physical["UsageTable"], Key=key)
