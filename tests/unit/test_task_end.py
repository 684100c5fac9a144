"""The one step that ends a task (Finish, FailTask) against moto: done only for the execution that
holds it, charged once, its callback queued once however often the step is retried, failed in the
state its error names with its credits given back, a final state never overwritten."""

from __future__ import annotations

import boto3
import pytest
from alphacut.aws.callbacks.queue import CallbackQueue
from alphacut.aws.ledger.usage import UsageMeter, task_hold
from alphacut.aws.tasks.end import ChargeFailed, TaskEnds
from alphacut.aws.tasks.table import TaskRecord, TaskTable
from alphacut.options import CutoutOptions
from alphacut.task_states import TaskState
from alphacut_dev.template import load_sam, table_definition
from moto import mock_aws

from tests.unit.moto_table import offline_aws

ME = "arn:aws:states:us-east-1:123456789012:execution:machine:t1"
RESULT = {
    "image_key": "tasks/t1/image.png",
    "mask_key": "",
    "width": 10,
    "height": 8,
    "found": True,
    "check": "",
}


@pytest.fixture
def ends(monkeypatch):
    from alphacut.aws import clients

    offline_aws(monkeypatch)
    with mock_aws():
        template = load_sam()
        dynamodb = boto3.client("dynamodb")
        for name, table in (("TasksTable", "tasks"), ("UsageTable", "usage")):
            dynamodb.create_table(**table_definition(name, table, template))
        sqs = boto3.client("sqs")
        queue = sqs.create_queue(QueueName="callbacks")["QueueUrl"]
        meter = UsageMeter("usage")
        meter.credits.open("key")
        meter.credits.top_up("key", 2000)
        yield TaskEnds(TaskTable("tasks"), meter, CallbackQueue(sqs, queue))
    clients.client.cache_clear()


def queued(ends: TaskEnds, task_id: str = "t1", callback: bool = True) -> TaskRecord:
    record = TaskRecord(task_id, "key", CutoutOptions().to_dict(), state=TaskState.PROCESSING)
    record.extra["execution_id"] = ME
    if callback:
        record.extra["callback_url"] = "https://example.com/hook"
    ends.table.create(record)
    ends.meter.credits.reserve("key", task_hold(task_id), 1000, seconds=3600)
    return record


def callbacks(ends: TaskEnds) -> int:
    got = ends.callbacks.sqs.receive_message(QueueUrl=ends.callbacks.queue_url, MaxNumberOfMessages=10)
    return len(got.get("Messages", []))


def test_finish_marks_done_charges_once_and_queues_one_callback_however_often_it_runs(ends):
    queued(ends)
    step = {"task_id": "t1", "execution_id": ME, "result": RESULT}
    assert ends.finish(step) == ends.finish(step) == "done"  # a retried step
    record = ends.table.get("t1")
    assert record.state is TaskState.DONE and record.extra["image_key"] == RESULT["image_key"]
    assert ends.meter.is_charged("t1") and ends.meter.credits.balance("key") == 1000
    assert ends.meter.credits.holds("key") == [] and callbacks(ends) == 1


def test_finish_leaves_a_task_another_execution_or_an_ending_holds(ends):
    queued(ends)
    assert (
        ends.finish({"task_id": "t1", "execution_id": "someone-else", "result": RESULT}) == "ended_elsewhere"
    )
    assert ends.table.get("t1").state is TaskState.PROCESSING and not ends.meter.is_charged("t1")


def test_a_charge_that_fails_still_queues_the_callback_then_raises_charge_failed(ends, monkeypatch):
    queued(ends)

    def refused(*args, **kwargs):
        raise RuntimeError("the usage table refused the write")

    monkeypatch.setattr(ends.meter, "settle_task", refused)
    with pytest.raises(ChargeFailed):
        ends.finish({"task_id": "t1", "execution_id": ME, "result": RESULT})
    assert ends.table.get("t1").state is TaskState.DONE and callbacks(ends) == 1


def test_fail_ends_in_the_state_its_error_names_gives_credits_back_and_never_overwrites(ends):
    queued(ends)
    step = {"task_id": "t1", "error": {"Error": "CorruptImage", "Cause": "not an image"}}
    assert ends.fail(step) == "failed"
    record = ends.table.get("t1")
    assert record.state is TaskState.INVALID_IMAGE and record.extra["error_name"] == "CorruptImage"
    assert ends.meter.credits.balance("key") == 2000 and callbacks(ends) == 1
    assert ends.fail({"task_id": "t1", "error": {"Error": "States.Timeout"}}) == "ended_elsewhere"
    assert ends.table.get("t1").state is TaskState.INVALID_IMAGE


def test_the_finalizer_ends_a_task_through_the_same_path_and_never_queues_its_callback_twice(ends):
    from alphacut.aws.tasks.finalize import TaskFinalizer

    finalizer = TaskFinalizer(ends.table, ends.meter, ends.callbacks)
    queued(ends)
    ends.table.note_callback_queued("t1")  # the state machine's step queued it before it was stopped
    assert finalizer.execution_ended({"name": "t1", "status": "ABORTED"}) == "ended"
    assert ends.table.get("t1").state is TaskState.FAILED
    assert ends.meter.credits.balance("key") == 2000 and callbacks(ends) == 0
    queued(ends, "t2")
    assert finalizer.execution_ended({"name": "t2", "status": "TIMED_OUT"}) == "ended"
    assert callbacks(ends) == 1 and ends.table.get("t2").extra.get("callback_queued")


def test_a_task_with_no_subject_is_one_unpaid_run_however_often_its_ending_runs(ends):
    queued(ends)
    blank = {"task_id": "t1", "execution_id": ME, "result": {**RESULT, "found": False}}
    assert ends.finish(blank) == ends.finish(blank) == "done"  # a retried step
    assert ends.meter.limits.unpaid_runs("key") == 1  # what the key's next submissions are held to
    assert ends.meter.credits.balance("key") == 2000  # nothing charged


def test_a_task_that_fails_or_finds_nothing_gives_its_keys_daily_spending_back_once(ends):
    from alphacut.aws.ledger.key_spend import SPENT, SPENT_DAY

    spend = ends.meter.key_spend
    for task_id in ("t1", "t2"):
        day, _ = spend.spend("key", 1000, limit=2000)  # what the submission counted on the key's limit
        queued(ends, task_id)
        ends.table.table.update_item(
            Key={"task_id": task_id},
            UpdateExpression="SET #d = :d, #s = :s",
            ExpressionAttributeNames={"#d": SPENT_DAY, "#s": SPENT},
            ExpressionAttributeValues={":d": day, ":s": 1000},
        )
    assert spend.today(["key"]) == {"key": 2000}
    failure = {"task_id": "t1", "error": {"Error": "CorruptImage", "Cause": "not an image"}}
    assert ends.fail(failure) == "failed" and ends.fail(failure) == "ended_elsewhere"
    assert spend.today(["key"]) == {"key": 1000}  # given back once, however often the step runs
    empty = {"task_id": "t2", "execution_id": ME, "result": {**RESULT, "found": False}}
    assert ends.finish(empty) == ends.finish(empty) == "done"
    assert spend.today(["key"]) == {"key": 0} and ends.meter.credits.balance("key") == 2000


def test_a_quota_tasks_slot_comes_back_once_when_it_fails_or_finds_nothing_however_often_it_ends(ends):
    from alphacut.aws.ledger.limits import SLOT_DAY, SLOT_HOLDER, utc_day

    limits, day = ends.meter.limits, utc_day(ends.meter.limits.clock())
    ends.meter.credits.top_up("key", 1000)  # queued() holds credits too: room for a third
    for task_id in ("t1", "t2", "t3"):
        limits.take_slot("test#acct", 3)  # what the submission took of the day's test results
        queued(ends, task_id)
        ends.table.table.update_item(
            Key={"task_id": task_id},
            UpdateExpression="SET #h = :h, #d = :d",
            ExpressionAttributeNames={"#h": SLOT_HOLDER, "#d": SLOT_DAY},
            ExpressionAttributeValues={":h": "test#acct", ":d": day},
        )
    failure = {"task_id": "t1", "error": {"Error": "CorruptImage", "Cause": "not an image"}}
    assert ends.fail(failure) == "failed" and ends.fail(failure) == "ended_elsewhere"
    ends.release_and_call_back(ends.table.get("t1"))  # the finalizer after the step: nothing more
    limits.give_back_task_slot("test#acct", day, "t1")  # the submission's own give-back: nothing more
    assert limits.taken("test#acct") == 2
    empty = {"task_id": "t2", "execution_id": ME, "result": {**RESULT, "found": False}}
    assert ends.finish(empty) == ends.finish(empty) == "done"
    assert limits.taken("test#acct") == 1  # t3 still running keeps its slot


def test_a_task_failing_once_its_model_could_have_run_is_one_unpaid_run_and_a_download_failure_none(ends):
    for task_id in ("t1", "t2"):
        queued(ends, task_id, callback=False)
        ends.table.table.update_item(
            Key={"task_id": task_id},
            UpdateExpression="SET processed_at_iso = :now",
            ExpressionAttributeValues={":now": "2026-11-29T10:00:00Z"},
        )
    late = {"task_id": "t1", "error": {"Error": "InvalidOption", "Cause": "padding leaves no room"}}
    assert ends.fail(late) == "failed" and ends.fail(late) == "ended_elsewhere"
    assert ends.meter.limits.unpaid_runs("key") == 1
    download = {"task_id": "t2", "error": {"Error": "UrlFetchFailed", "Cause": "404"}}
    assert ends.fail(download) == "failed"
    assert ends.meter.limits.unpaid_runs("key") == 1  # no model ran: not counted


def test_a_task_sent_to_the_endpoint_that_fails_on_a_download_after_it_is_one_unpaid_run(ends):
    """On the GPU path the endpoint runs the model before the Compose step: a failure there, even a
    download's (-3, a background URL), came after a model run and is counted (it was free)."""
    queued(ends, "t1", callback=False)
    ends.table.table.update_item(
        Key={"task_id": "t1"},
        UpdateExpression="SET processed_at_iso = :now, task_token = :token",
        ExpressionAttributeValues={":now": "2026-11-29T10:00:00Z", ":token": "token-of-the-waiting-step"},
    )
    download = {"task_id": "t1", "error": {"Error": "UrlFetchFailed", "Cause": "404"}}
    assert ends.fail(download) == "failed"
    assert ends.meter.limits.unpaid_runs("key") == 1
