import json

import pytest
from alphacut.aws.tasks.segment_queue import LOST_ERROR, SegmentQueueWorker, end_lost_step
from alphacut.task_states import ResultUploadFailed
from botocore.exceptions import ClientError


class FakeStepFunctions:
    """Records SendTask* calls; ``refuse`` makes them fail with that error code."""

    def __init__(self, refuse: str = ""):
        self.calls: list[tuple[str, dict]] = []
        self.refuse = refuse

    def _call(self, name: str, **kwargs):
        if self.refuse:
            raise ClientError({"Error": {"Code": self.refuse, "Message": "no"}}, name)
        self.calls.append((name, kwargs))

    def send_task_success(self, **kwargs):
        self._call("success", **kwargs)

    def send_task_failure(self, **kwargs):
        self._call("failure", **kwargs)


MESSAGE = {"task": {"task_id": "t1"}, "task_token": "token-1"}


def test_a_step_that_runs_ends_with_its_output_by_its_token():
    sfn = FakeStepFunctions()
    SegmentQueueWorker(sfn).handle(MESSAGE, lambda task: {"image_key": f"{task['task_id']}.png"})
    assert sfn.calls == [("success", {"taskToken": "token-1", "output": json.dumps({"image_key": "t1.png"})})]


def test_a_failing_step_ends_under_the_error_class_name_the_state_machine_catches():
    sfn = FakeStepFunctions()

    def run(task):
        raise ResultUploadFailed("S3 refused the result")

    SegmentQueueWorker(sfn).handle(MESSAGE, run)
    assert sfn.calls == [
        ("failure", {"taskToken": "token-1", "error": "ResultUploadFailed", "cause": "S3 refused the result"})
    ]


def test_a_step_that_ended_already_is_not_an_error_and_other_refusals_send_the_message_back():
    SegmentQueueWorker(FakeStepFunctions(refuse="TaskTimedOut")).handle(MESSAGE, lambda task: {})
    with pytest.raises(ClientError):
        SegmentQueueWorker(FakeStepFunctions(refuse="ThrottlingException")).handle(MESSAGE, lambda task: {})


def test_a_lost_step_from_the_dead_letter_queue_fails_as_a_time_out():
    sfn = FakeStepFunctions()
    assert end_lost_step(sfn, MESSAGE, receives=2) == "ended"
    assert sfn.calls[0][0] == "failure" and sfn.calls[0][1]["error"] == LOST_ERROR
    assert end_lost_step(FakeStepFunctions(refuse="TaskDoesNotExist"), MESSAGE, 2) == "not_waiting"
    assert end_lost_step(sfn, {"task_id": "t1"}, 2) == "dropped"


def test_the_finalizer_fails_a_segment_step_whose_message_reached_the_dead_letter_queue(monkeypatch):
    from alphacut.aws import clients
    from alphacut.aws.tasks.finalize import TaskFinalizer

    sfn = FakeStepFunctions()
    monkeypatch.setattr(clients, "client", lambda service: sfn)
    record = {"body": json.dumps(MESSAGE), "attributes": {"ApproximateReceiveCount": "2"}}
    assert TaskFinalizer(table=None, meter=None).dead_letter(record) == "ended"
    assert sfn.calls == [
        (
            "failure",
            {
                "taskToken": "token-1",
                "error": LOST_ERROR,
                "cause": "the Segment function ended without an answer 2 times",
            },
        )
    ]
