"""The GPU path in process, with canned answers and notifications: which endpoint errors are
retried, what a failed inference ends the task as, how a notification ends its waiting step,
and which path a task takes (the CPU while the endpoint is cold and the backlog small)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from alphacut.aws import clients
from alphacut.aws.tasks import async_inference
from alphacut.aws.tasks.async_inference import (
    EndpointCapacity,
    InferenceNotifications,
    ModelRequestRejected,
    ModelServerUnavailable,
    endpoint_failure,
    failure_of,
)
from alphacut.aws.tasks.dispatch import CPU, GPU, PathChooser
from alphacut.errors import NotFound
from alphacut.options import CutoutOptions
from botocore.exceptions import ClientError


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "InvokeEndpointAsync",
    )


@pytest.mark.parametrize(
    "code, status",
    [("ValidationError", 400), ("AccessDeniedException", 403), ("ValidationError", 413)],
)
def test_a_refusal_by_the_endpoint_is_not_retried(code, status):
    assert type(endpoint_failure(client_error(code, status), "ep")) is ModelRequestRejected


@pytest.mark.parametrize(
    "code, status",
    [("ThrottlingException", 400), ("ServiceUnavailable", 503), ("InternalFailure", 500)],
)
def test_throttling_and_server_errors_are_retried(code, status):
    assert type(endpoint_failure(client_error(code, status), "ep")) is ModelServerUnavailable


class StoredBodies:
    """An S3 client holding the failure locations' bodies."""

    def __init__(self, bodies: dict[str, bytes]):
        self.bodies = bodies

    def get_object(self, Bucket, Key):
        if f"s3://{Bucket}/{Key}" not in self.bodies:
            raise client_error("NoSuchKey", 404)
        return {"Body": SimpleNamespace(read=lambda: self.bodies[f"s3://{Bucket}/{Key}"])}


def failed(reason: str, location: str | None = None) -> dict:
    response = {"failureLocation": location} if location else {}
    return {"invocationStatus": "Failed", "failureReason": reason, "responseParameters": response}


def test_an_image_the_container_refused_ends_as_that_images_fault(monkeypatch):
    refused = json.dumps({"code": "image_too_small", "message": "is 20 px wide", "field": "image"}).encode()
    crashed = json.dumps({"code": "model_error", "message": "the model failed"}).encode()
    bodies = StoredBodies({"s3://r/endpoint/failures/a": refused, "s3://r/endpoint/failures/b": crashed})
    monkeypatch.setattr(clients, "client", lambda service: bodies)
    reason = "ClientError: Received client error (422) from primary"
    assert failure_of(failed(reason, "s3://r/endpoint/failures/a")) == ("ImageTooSmall", "is 20 px wide")
    assert failure_of(failed("ServerError: (500)", "s3://r/endpoint/failures/b"))[0] == "ModelFailed"
    assert failure_of(failed("ServerError: (500)", "s3://r/endpoint/failures/gone"))[0] == "ModelFailed"


def test_a_request_that_timed_out_or_expired_in_the_queue_ends_in_minus_8():
    from alphacut.task_states import TaskState, failure_state

    for reason in ("ClientError: Inference request timed out after 30 seconds", "Request expired"):
        name, _ = failure_of(failed(reason))
        assert failure_state(name) is TaskState.TIMED_OUT


class Table:
    def __init__(self, records: dict[str, dict]):
        self.records = records

    def get(self, task_id):
        if task_id not in self.records:
            raise NotFound(f"no task {task_id}")
        return SimpleNamespace(extra=self.records[task_id])


class StepFunctions:
    def __init__(self, refuse: str = ""):
        self.calls: list[tuple] = []
        self.refuse = refuse

    def _maybe_refuse(self):
        if self.refuse:
            raise ClientError({"Error": {"Code": self.refuse, "Message": "m"}}, "SendTask")

    def send_task_success(self, taskToken, output):
        self._maybe_refuse()
        self.calls.append(("success", taskToken, json.loads(output)))

    def send_task_failure(self, taskToken, error, cause):
        self._maybe_refuse()
        self.calls.append(("failure", taskToken, error, cause))


def notifications_with(monkeypatch, sfn: StepFunctions, records: dict[str, dict]) -> InferenceNotifications:
    monkeypatch.setattr(InferenceNotifications, "sfn", property(lambda self: sfn))
    return InferenceNotifications(Table(records))


def test_a_completed_inference_ends_its_step_with_the_mattes_location(monkeypatch):
    sfn = StepFunctions()
    handler = notifications_with(monkeypatch, sfn, {"t1": {"task_token": "tok"}})
    handler.handle(
        {
            "inferenceId": "t1",
            "invocationStatus": "Completed",
            "responseParameters": {"outputLocation": "s3://r/endpoint/output/x.out"},
        }
    )
    assert sfn.calls == [("success", "tok", {"matte_location": "s3://r/endpoint/output/x.out"})]


def test_a_failed_inference_ends_its_step_with_the_error_name(monkeypatch):
    sfn = StepFunctions()
    handler = notifications_with(monkeypatch, sfn, {"t1": {"task_token": "tok"}})
    handler.handle({"inferenceId": "t1", **failed("ClientError: Inference request timed out")})
    assert sfn.calls[0][:3] == ("failure", "tok", "ModelTimedOut")


@pytest.mark.parametrize("refusal", ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist"])
def test_a_notification_for_a_step_that_already_ended_is_dropped(monkeypatch, refusal):
    handler = notifications_with(monkeypatch, StepFunctions(refuse=refusal), {"t1": {"task_token": "tok"}})
    handler.handle(
        {"inferenceId": "t1", "invocationStatus": "Completed", "responseParameters": {"outputLocation": "x"}}
    )


def test_a_notification_for_no_waiting_task_is_dropped_and_other_errors_come_back(monkeypatch):
    sfn = StepFunctions()
    handler = notifications_with(monkeypatch, sfn, {"t1": {}})
    handler.handle({"inferenceId": "gone", "invocationStatus": "Completed"})
    handler.handle({"inferenceId": "t1", "invocationStatus": "Completed"})  # no token: never sent
    assert sfn.calls == []
    failing = notifications_with(
        monkeypatch, StepFunctions(refuse="ThrottlingException"), {"t1": {"task_token": "t"}}
    )
    with pytest.raises(ClientError):  # the message goes back to the queue
        failing.handle(
            {
                "inferenceId": "t1",
                "invocationStatus": "Completed",
                "responseParameters": {"outputLocation": "x"},
            }
        )


class Capacity:
    def __init__(self, instances: int):
        self.count = instances

    def instances(self) -> int:
        return self.count


def chooser(monkeypatch, instances: int, backlog: int, threshold: int) -> PathChooser:
    paths = PathChooser(Capacity(instances), "queue-url", threshold)  # type: ignore[arg-type]
    monkeypatch.setattr(PathChooser, "backlog", lambda self: backlog)
    return paths


def test_a_cold_endpoint_and_a_small_backlog_send_the_task_to_the_cpu(monkeypatch):
    assert chooser(monkeypatch, 0, 10, 100).path(CutoutOptions()) == CPU
    assert chooser(monkeypatch, 0, 100, 100).path(CutoutOptions()) == CPU


def test_a_backlog_above_the_threshold_wakes_the_endpoint(monkeypatch):
    assert chooser(monkeypatch, 0, 101, 100).path(CutoutOptions()) == GPU
    assert chooser(monkeypatch, 0, 1, 0).path(CutoutOptions()) == GPU  # threshold 0: always the GPU


def test_a_warm_endpoint_takes_every_task_but_stamps(monkeypatch):
    paths = chooser(monkeypatch, 1, 0, 100)
    assert paths.path(CutoutOptions()) == GPU
    assert paths.path(CutoutOptions.from_mapping({"type": "stamp"})) == CPU
    assert PathChooser(None).path(CutoutOptions()) == CPU  # no endpoint in the stack


def test_the_endpoints_status_is_read_once_per_period_and_unknown_counts_as_warm(monkeypatch):
    calls = []

    class SageMaker:
        def describe_endpoint(self, EndpointName):
            calls.append(EndpointName)
            if len(calls) > 1:
                raise client_error("ThrottlingException", 400)
            return {"ProductionVariants": [{"CurrentInstanceCount": 0}]}

    monkeypatch.setattr(EndpointCapacity, "sagemaker", property(lambda self: SageMaker()))
    capacity = EndpointCapacity("ep", cache_seconds=60)
    assert capacity.instances() == 0 and capacity.instances() == 0 and len(calls) == 1
    capacity.cache_seconds = 0
    assert capacity.instances() == 1  # unknown: the endpoint's own queue is the safe place


def test_both_paths_process_within_the_minus_8_rules_30_seconds_and_wait_in_a_queue_as_long():
    from tests.unit.test_task_states import asl_states, template_function

    states = asl_states()
    function_limit = template_function("SegmentFunction")["Timeout"]
    assert function_limit < states["Compose"]["TimeoutSeconds"] == 30  # the CPU path's processing
    assert async_inference.INVOCATION_TIMEOUT_SECONDS == 30  # the -8 rule on the GPU path
    # a queued Segment step may wait for an instance as long as a request in the endpoint's queue
    assert states["Segment"]["TimeoutSeconds"] == states["SubmitToEndpoint"]["TimeoutSeconds"]


def test_the_templates_cold_threshold_is_the_cost_models_break_even():
    import importlib.util
    import sys

    from alphacut_dev.template import ROOT, load_sam

    spec = importlib.util.spec_from_file_location("bench_capacity", ROOT / "benchmarks" / "bench_capacity.py")
    model = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = model  # its dataclasses look their module up
    spec.loader.exec_module(model)
    parameters = load_sam()["Parameters"]
    assert int(parameters["GpuBacklogThreshold"]["Default"]) == model.break_even_backlog(
        model.Prices(), model.Capacity()
    )
    assert int(parameters["SegmentConcurrency"]["Default"]) == model.Capacity().segment_concurrency
    assert int(parameters["GpuMaxInstances"]["Default"]) == model.Capacity().max_instances


def test_a_background_url_is_fetched_and_staged_before_the_endpoint_runs_and_a_dead_one_sends_nothing(
    monkeypatch,
):
    """The Compose step after the endpoint reads what was staged: a second fetch after the model
    could fail for free or answer another photo (the fourth attack)."""
    import boto3
    from alphacut.aws.tasks.async_inference import AsyncEndpoint, staged_key
    from alphacut.errors import UrlFetchFailed
    from moto import mock_aws

    from tests.unit.moto_table import offline_aws

    offline_aws(monkeypatch)
    served = {"https://img.example.com/bg.png": b"background", "https://img.example.com/p.jpg": b"photo"}

    def fetch(url: str, max_bytes: int, field: str = "image_url") -> bytes:
        if url not in served:
            raise UrlFetchFailed("answered 404", field=field)
        return served[url]

    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="uploads")
        endpoint = AsyncEndpoint(
            "alphacut-gpu", None, "uploads", max_bytes=1000, settings=SimpleNamespace(fetch=fetch)
        )
        step = {"task_id": "t1", "image_url": "https://img.example.com/p.jpg",
                "options": {"bg_image_url": "https://img.example.com/bg.png"}}  # fmt: skip
        assert endpoint.input_location(step) == f"s3://uploads/{staged_key('t1', 'fetched')}"
        body = lambda what: (
            boto3.client("s3").get_object(Bucket="uploads", Key=staged_key("t1", what))["Body"].read()
        )
        assert (body("fetched"), body("background")) == (b"photo", b"background")
        dead = {**step, "task_id": "t2", "options": {"bg_image_url": "https://img.example.com/gone.png"}}
        with pytest.raises(UrlFetchFailed, match="bg_image_url"):
            endpoint.input_location(dead)  # before the endpoint: the task ends -3 with no model run
    clients.client.cache_clear()
