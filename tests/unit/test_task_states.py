"""The PicWish-style task states, and the state machine's Catch table agreeing with them."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from alphacut.task_states import FAILURE_STATES, TaskState, failure_state

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "task.asl.json"


def test_state_codes_are_seed_002s():
    assert {s.name: s.value for s in TaskState} == {
        "QUEUED": 0,
        "DONE": 1,
        "PREPARING": 2,
        "WAITING": 3,
        "PROCESSING": 4,
        "FAILED": -1,
        "RESULT_UPLOAD_FAILED": -2,
        "DOWNLOAD_FAILED": -3,
        "DOWNLOAD_TOO_LARGE": -5,
        "INVALID_IMAGE": -7,
        "TIMED_OUT": -8,
    }
    assert [s for s in TaskState if s.is_final] == [TaskState.DONE] + [s for s in TaskState if s.value < 0]
    assert TaskState.DONE.progress == 100 and TaskState.FAILED.progress == 0


def test_unknown_errors_fail_with_minus_one():
    assert failure_state("KeyError") is TaskState.FAILED
    assert failure_state("States.Timeout") is TaskState.TIMED_OUT


def test_every_failure_is_caught_into_the_one_step_that_ends_the_task_in_its_state():
    definition = json.loads(ASL.read_text())
    states = definition["States"]
    for model_step in ("Segment", "SubmitToEndpoint", "Compose"):  # both paths, the same table
        catches = states[model_step]["Catch"]
        assert catches[0] == {
            "ErrorEquals": ["TaskNoLongerRunning"],
            "ResultPath": "$.error",
            "Next": "EndedElsewhere",
        }
        assert catches[-1] == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "FailTask"}
    # FailTask's Lambda names the state from the error (one table, alphacut.task_states)
    assert states["FailTask"]["Parameters"]["Payload"] == {
        "step": "fail",
        "task_id.$": "$.task_id",
        "error.$": "$.error",
    }
    for error_name, expected in FAILURE_STATES.items():
        assert failure_state(error_name) is expected
    assert states["Compose"]["TimeoutSeconds"] == 30  # the Segment step: its function's 28 s
    # every Task state has a way out to a final state (the last steps' own lasting failure fails
    # the execution, and the Finalize function ends the task on that status event)
    for name, state in states.items():
        if state["Type"] == "Task" and name not in ("Finish", "FailTask"):
            assert any(c["ErrorEquals"] == ["States.ALL"] for c in state.get("Catch", [])), name


def _statelint(path: Path) -> subprocess.CompletedProcess:
    statelint = shutil.which("statelint", path=str(Path(sys.executable).parent))
    assert statelint, "statelint is a dev dependency"
    return subprocess.run([statelint, str(path)], capture_output=True, text=True, timeout=60)


def test_asl_passes_statelint(tmp_path):
    assert _statelint(ASL).returncode == 0
    broken = json.loads(ASL.read_text())
    broken["States"]["Segment"]["Next"] = "NoSuchState"
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    assert _statelint(tmp_path / "broken.json").returncode != 0


def asl_states() -> dict:
    return json.loads(ASL.read_text())["States"]


def template_function(name: str) -> dict:
    from alphacut_dev.template import load_sam

    return load_sam()["Resources"][name]["Properties"]


def test_mark_processing_accepts_a_task_taken_by_its_own_execution():
    parameters = asl_states()["MarkProcessing"]["Parameters"]
    assert "execution_id = :me" in parameters["UpdateExpression"]
    assert (
        parameters["ConditionExpression"]
        == "#state = :queued OR (#state = :processing AND execution_id = :me)"
    )
    assert parameters["ExpressionAttributeValues"][":me"] == {"S.$": "$$.Execution.Id"}


def test_done_and_failed_end_in_one_step_each_and_a_lasting_charge_failure_is_charge_failed():
    from alphacut.aws.tasks.end import ChargeFailed
    from alphacut.aws.tasks.finalize import CHARGE_FAILED

    states = asl_states()
    finish = states["Finish"]
    assert finish["End"] is True and states["FailTask"]["End"] is True and "Catch" not in finish
    assert finish["Parameters"]["Payload"]["execution_id.$"] == "$$.Execution.Id"  # only its own task
    retry = finish["Retry"][0]
    assert (
        retry["ErrorEquals"] == ["States.ALL"]
        and retry["MaxAttempts"] >= 5
        and sum(retry["IntervalSeconds"] * 2**n for n in range(retry["MaxAttempts"])) >= 60
    )
    # the Lambda's error name fails the execution when the retries run out: the finalizer's name
    assert ChargeFailed.__name__ == CHARGE_FAILED
    assert {s["Type"] for s in states.values()} == {"Task", "Choice", "Succeed"}


def test_an_s3_notification_for_a_folder_marker_names_no_upload():
    from alphacut.aws.tasks.dispatch import uploads_in

    def record(key):
        return {"s3": {"bucket": {"name": "b"}, "object": {"key": key, "eTag": "e"}}}

    body = {"Records": [record("incoming/a+b.jpg"), record("incoming/folder/"), record("elsewhere/x.jpg")]}
    assert list(uploads_in(body)) == [("b", "incoming/a b.jpg", "e", "")]


def test_two_puts_of_the_same_bytes_are_two_tasks_and_one_put_notified_twice_is_one():
    from alphacut.aws.tasks.dispatch import upload_task_id, uploads_in

    def notification(sequencer):
        stored = {"key": "incoming/a.jpg", "eTag": "e", "sequencer": sequencer}
        return {"Records": [{"s3": {"bucket": {"name": "b"}, "object": stored}}]}

    first, again, second = (next(uploads_in(notification(s))) for s in ("0A1", "0A1", "0B2"))
    assert upload_task_id(first) == upload_task_id(again) != upload_task_id(second)


def test_the_whole_execution_has_a_time_limit_above_its_slowest_path():
    """Either path, every retry taken at its longest; the endpoint path waits at most the
    request's time to live in the endpoint's queue (AWS's largest, 6 h) and its processing."""
    from alphacut.aws.tasks.async_inference import INVOCATION_TIMEOUT_SECONDS
    from alphacut_dev.template import load_sam

    definition = json.loads(ASL.read_text())
    states = definition["States"]

    def retried_seconds(state, per_attempt):
        rules = [r for r in state.get("Retry", []) if r.get("MaxAttempts", 3)]
        worst = max(rules, key=lambda r: r["MaxAttempts"], default={"MaxAttempts": 0})
        waits = sum(
            min(
                worst.get("IntervalSeconds", 1) * worst.get("BackoffRate", 2.0) ** n,
                worst.get("MaxDelaySeconds", float("inf")),
            )
            for n in range(worst["MaxAttempts"])
        )
        return waits + (worst["MaxAttempts"] + 1) * per_attempt

    after_the_model = retried_seconds(states["Finish"], 15)
    cpu_path = retried_seconds(states["MarkProcessing"], 1) + retried_seconds(states["Segment"], 30)
    # the Submit step outwaits the longest a request may live in the endpoint's queue, and its run
    longest_ttl = int(load_sam()["Parameters"]["GpuRequestTtlSeconds"]["MaxValue"])
    longest_wait = states["SubmitToEndpoint"]["TimeoutSeconds"]
    assert longest_wait > longest_ttl + INVOCATION_TIMEOUT_SECONDS
    gpu_path = (
        retried_seconds(states["MarkProcessing"], 1)
        + retried_seconds(states["SubmitToEndpoint"], 28)
        + longest_wait
        + retried_seconds(states["Compose"], 30)
    )
    assert max(cpu_path, gpu_path) + after_the_model < definition["TimeoutSeconds"]


def test_a_callback_is_retried_at_least_three_times_over_at_least_five_minutes():
    from alphacut.aws.callbacks.queue import retry_delay
    from alphacut_dev.template import load_sam

    receives = load_sam()["Resources"]["CallbackQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    waits = [retry_delay(n) for n in range(1, receives)]  # after each failed receive but the last
    assert len(waits) >= 3 and sum(waits) >= 300 and waits == sorted(waits)


def test_a_done_task_with_no_subject_read_back_from_the_table_is_not_billable():
    from decimal import Decimal

    from alphacut.aws.tasks.table import TaskRecord, is_billable

    item = {"task_id": "t", "owner": "k", "state": Decimal(1), "created_at": Decimal(1), "options": "{}"}
    assert not is_billable(TaskRecord.from_item({**item, "found": False}))  # bool is an int: kept a bool
    assert is_billable(TaskRecord.from_item({**item, "found": True}))
    assert is_billable(TaskRecord.from_item(item))  # a task stored before `found` existed
    assert not is_billable(TaskRecord.from_item({**item, "state": Decimal(-1)}))
