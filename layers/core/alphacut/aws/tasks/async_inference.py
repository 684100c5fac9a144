"""The GPU path of a task: SageMaker Asynchronous Inference, ended by its notification.

The state machine's Submit step (``lambda:invoke.waitForTaskToken``) calls ``AsyncEndpoint.submit``:
the task waits (state 3) with its task token in the task table, and the request goes to the
endpoint's queue with the input's S3 location (every size the task API accepts; the real-time
``InvokeEndpoint`` stops at 6 MB). The container marks the task 4 when its model takes it. The
endpoint writes the matte to S3 and publishes to its success or error SNS topic; an SQS queue
subscribed to both feeds ``InferenceNotifications.handle``, which ends the waiting step with the
token: success carries the matte's location (the Compose step cuts the image out), failure an
error name the state machine's Catch table maps to a task state. Nothing polls.

``EndpointCapacity`` tells the dispatcher whether the endpoint has an instance (for the
CPU-while-cold rule in ``alphacut.aws.tasks.dispatch``).

Usage::

    endpoint = AsyncEndpoint.from_settings(ServiceSettings.from_env())
    endpoint.submit({"task": step_input, "task_token": token, "execution_id": arn})
    InferenceNotifications(TaskTable.from_settings(settings)).handle(json.loads(sqs_body))
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from alphacut import errors
from alphacut.aws import clients
from alphacut.aws.objects import refuse_oversized, s3_location
from alphacut.aws.tasks.table import TaskTable
from alphacut.errors import NotFound
from alphacut.options import DEFAULT_MODEL, CutoutOptions
from alphacut.settings import EngineSettings, ServiceSettings
from alphacut.task_states import FAILURE_STATES, TaskNoLongerRunning

logger = Logger(child=True)

# The model's own processing limit: the -8 rule (30 s of processing), as on the CPU path.
INVOCATION_TIMEOUT_SECONDS = 30
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "InternalFailure",
        "ModelNotReadyException",
    }
)
_ERRORS_BY_CODE = {
    cls.code: cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.AlphacutError)
}


def staged_key(task_id: str, what: str) -> str:
    """Where the Submit step stages a task's fetched input (``fetched``) or background
    (``background``) for the endpoint and the Compose step after it."""
    return f"tasks/{task_id}/{what}"


class ModelServerUnavailable(Exception):
    """The endpoint did not take the request (down, throttled, 5xx): worth a retry."""


class ModelRequestRejected(Exception):
    """The endpoint refused the request (4xx other than throttling): a retry gets the same."""


class ModelTimedOut(Exception):
    """The model took longer than the task may (state -8), or the request expired in the queue."""


class ModelFailed(Exception):
    """The model failed on this request for a reason that is not the image's (state -1)."""


def endpoint_failure(error: ClientError, endpoint: str) -> Exception:
    """What a runtime API error means for the task: worth a retry (throttling, 5xx), or a
    refusal no retry mends (other 4xx)."""
    response = error.response
    code = response["Error"].get("Code", "")
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
    if status >= 500 or status == 429 or code in THROTTLING_CODES:
        return ModelServerUnavailable(f"{endpoint}: {code} (HTTP {status})")
    return ModelRequestRejected(f"{endpoint}: {code} (HTTP {status}): {response['Error'].get('Message', '')}")


@dataclass
class AsyncEndpoint:
    endpoint_name: str
    table: TaskTable
    staging_bucket: str  # where an image_url's bytes are put for the endpoint to read
    max_bytes: int = field(default_factory=lambda: EngineSettings.from_env().limits.max_bytes)
    settings: ServiceSettings = field(default_factory=ServiceSettings)

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> AsyncEndpoint:
        return cls(
            settings.require("sagemaker_endpoint"),
            TaskTable.from_settings(settings),
            settings.require("uploads_bucket"),
            settings=settings,
        )

    @property
    def runtime(self) -> Any:
        return clients.client("sagemaker-runtime")

    def input_location(self, step: dict[str, Any]) -> str:
        """The input's S3 URI, refused by size before the endpoint sees it; an image_url is
        fetched (capped) and staged next to the task's other inputs, and so is a background URL:
        both before the model runs, so a URL that fails ends the task before any model run, and
        the Compose step after the endpoint reads what was staged, never fetching again (a second
        fetch after the model could fail for free, or answer another photo than the one matted)."""
        s3 = clients.client("s3")
        background = (step.get("options") or {}).get("bg_image_url")
        if background:
            data = self.settings.fetch(background, self.max_bytes, field="bg_image_url")
            s3.put_object(
                Bucket=self.staging_bucket, Key=staged_key(step["task_id"], "background"), Body=data
            )
        if step.get("image_url"):
            data = self.settings.fetch(step["image_url"], self.max_bytes)
            key = staged_key(step["task_id"], "fetched")
            s3.put_object(Bucket=self.staging_bucket, Key=key, Body=data)
            return f"s3://{self.staging_bucket}/{key}"
        head = s3.head_object(Bucket=step["input_bucket"], Key=step["input_key"])
        refuse_oversized(head.get("ContentLength", 0), self.max_bytes)
        return f"s3://{step['input_bucket']}/{step['input_key']}"

    def submit(self, event: dict[str, Any]) -> dict[str, str]:
        step = event["task"]
        task_id = step["task_id"]
        location = self.input_location(step)
        if not self.table.await_model(task_id, event["execution_id"], event["task_token"]):
            raise TaskNoLongerRunning(f"task {task_id} is no longer in progress: not sent to the endpoint")
        options = CutoutOptions.from_mapping(step.get("options") or {})
        # the default model is not named: the attributes stay what an endpoint before models took
        model = f"&model={options.model}" if options.model not in (None, DEFAULT_MODEL) else ""
        try:
            answer = self.runtime.invoke_endpoint_async(
                EndpointName=self.endpoint_name,
                InputLocation=location,
                InferenceId=task_id,
                ContentType="application/octet-stream",
                CustomAttributes=(
                    f"type={options.type.resolved.value}&quality={options.quality.value}&task={task_id}"
                    + model
                ),
                RequestTTLSeconds=self.settings.gpu_request_ttl,
                InvocationTimeoutSeconds=INVOCATION_TIMEOUT_SECONDS,
            )
        except ClientError as error:
            raise endpoint_failure(error, self.endpoint_name) from None
        except BotoCoreError as error:  # connection refused or reset
            raise ModelServerUnavailable(f"{self.endpoint_name}: {error}") from None
        return {
            "inference_id": answer.get("InferenceId", task_id),
            "output_location": answer["OutputLocation"],
        }


def failure_of(notification: dict[str, Any]) -> tuple[str, str]:
    """(error name, cause) of a failed inference: the container's own error (its body, kept at
    the failure location) when it refused the image, else what SageMaker says went wrong."""
    reason = str(notification.get("failureReason") or "the inference failed")
    location = (notification.get("responseParameters") or {}).get("failureLocation")
    if location:
        try:
            bucket, key = s3_location(location)
            detail = json.loads(clients.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
            error_class = _ERRORS_BY_CODE.get(detail.get("code"))
            if error_class is not None and error_class.__name__ in FAILURE_STATES:  # the image's fault
                return error_class.__name__, str(detail.get("message") or reason)
        except (ClientError, ValueError, AttributeError):
            pass  # no readable body: SageMaker's reason decides
    lowered = reason.lower()
    if "timed out" in lowered or "timeout" in lowered or "expired" in lowered:
        return ModelTimedOut.__name__, reason
    return ModelFailed.__name__, reason


class InferenceNotifications:
    """Ends a waiting Submit step from the endpoint's notification (SNS -> SQS, raw delivery)."""

    def __init__(self, table: TaskTable):
        self.table = table

    @property
    def sfn(self) -> Any:
        return clients.client("stepfunctions")

    def handle(self, notification: dict[str, Any]) -> None:
        task_id = str(notification.get("inferenceId") or "")
        try:
            token = self.table.get(task_id).extra.get("task_token") if task_id else None
        except NotFound:
            token = None
        if not token:
            logger.warning("notification dropped: no waiting task", extra={"inference_id": task_id[:100]})
            return
        try:
            if notification.get("invocationStatus") == "Completed":
                output = {"matte_location": notification["responseParameters"]["outputLocation"]}
                self.sfn.send_task_success(taskToken=token, output=json.dumps(output))
            else:
                name, cause = failure_of(notification)
                self.sfn.send_task_failure(taskToken=token, error=name, cause=cause[:32768])
        except ClientError as error:
            if error.response["Error"]["Code"] in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist"):
                # its step ended already (timed out, execution stopped, a duplicate notification)
                logger.warning("notification for an ended step", extra={"task_id": task_id})
                return
            raise


@dataclass
class EndpointCapacity:
    """The endpoint's current instance count, from DescribeEndpoint, trusted for ``cache_seconds``
    (a control-plane API with a low rate limit: one call per container per period)."""

    endpoint_name: str
    cache_seconds: float = 10.0
    _read: tuple[float, int] | None = None

    @property
    def sagemaker(self) -> Any:
        return clients.client("sagemaker")

    def instances(self) -> int:
        now = time.monotonic()
        if self._read is not None and now - self._read[0] < self.cache_seconds:
            return self._read[1]
        try:
            variants = self.sagemaker.describe_endpoint(EndpointName=self.endpoint_name).get(
                "ProductionVariants", []
            )
            count = sum(int(v.get("CurrentInstanceCount", 0)) for v in variants)
        except (ClientError, BotoCoreError) as error:
            # unknown: count it as warm, so tasks queue at the endpoint (which wakes itself)
            # rather than all piling onto the CPU path
            logger.warning("endpoint status unknown", extra={"error": str(error)})
            count = 1
        self._read = (now, count)
        return count
