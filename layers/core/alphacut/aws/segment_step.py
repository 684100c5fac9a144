"""The state machine's Segment step: input from S3 (or its image_url), the matte from the
SageMaker endpoint (or the CPU pipeline in this Lambda), the cutout composed and stored in S3.

Errors leave as the exception classes the state machine's Catch table maps to the PicWish-style task states
(``alphacut.task_states.FAILURE_STATES``). Only what a retry can mend is retried: an endpoint that is
down, throttled or answers 5xx raises ``ModelServerUnavailable``; one that refuses the request
(4xx: validation, access, payload size) raises ``ModelRequestRejected`` (-1 at once); one that
does not answer within ``MODEL_READ_TIMEOUT`` raises ``ModelTimedOut`` (-8), since the task's
30 s are spent by then. Every timeout here ends before the step's own 30 s limit.

Results are stored only while the task is still in progress (``still_processing``): a step that
finishes after its execution was stopped or its task ended elsewhere writes nothing.

Step input (from the task record)::

    {"task_id": "...", "input_bucket": "...", "input_key": "...",   # or "image_url": "https://..."
     "options": {...CutoutOptions...}, "result_bucket": "...", "image_key": "...", "mask_key": "..."}
"""

from __future__ import annotations

import io
import json
import time
from functools import cache
from typing import Any, Protocol

import boto3
import numpy as np
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError
from PIL import Image

from alphacut import errors
from alphacut.aws.task_table import TaskTable
from alphacut.codec import DecodedImage
from alphacut.deadlines import budget, deadline
from alphacut.matte import resize_matte
from alphacut.options import CutoutOptions, Quality, SubjectType
from alphacut.pipeline import Pipeline, Timings
from alphacut.settings import ServiceSettings
from alphacut.task_states import ResultUploadFailed, TaskState


class ModelServerUnavailable(Exception):
    """The model endpoint did not answer (down, throttled, 5xx): worth a retry."""


class ModelRequestRejected(Exception):
    """The model endpoint refused the request (4xx other than throttling): a retry gets the same."""


class ModelTimedOut(Exception):
    """The model endpoint took longer than the task may (state -8)."""


class TaskNoLongerRunning(Exception):
    """The task ended (or its execution was stopped) while this step ran: nothing is stored."""


_ERRORS_BY_CODE = {
    cls.code: cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.AlphacutError)
}


# The step's limit is 30 s (statemachine/task.asl.json, Segment.TimeoutSeconds) and the Segment
# function's 28 s (template.yaml): the endpoint's answer must come well within both.
MODEL_CONNECT_TIMEOUT = 2
MODEL_READ_TIMEOUT = 22
# The step runs under one deadline (``alphacut.deadlines``): the Segment function's remaining time
# less this margin. Image URL, background URL and model share it; the model's read leaves
# STORE_RESERVE_SECONDS for composing and storing the result.
STEP_MARGIN_SECONDS = 1.0
STORE_RESERVE_SECONDS = 2.0
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


def endpoint_failure(error: ClientError, endpoint: str) -> Exception:
    """What an endpoint's error answer means for the task: the image's own fault (the model
    server's 4xx), worth a retry (throttling, 5xx), or a refusal no retry mends (other 4xx)."""
    response = error.response
    code = response["Error"].get("Code", "")
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
    if code == "ModelError":
        status = int(response.get("OriginalStatusCode", 500))
        if 400 <= status < 500:
            detail = json.loads(response.get("OriginalMessage") or "{}")
            return _ERRORS_BY_CODE.get(detail.get("code"), errors.CorruptImage)(
                detail.get("message", "rejected by the model server"), field=detail.get("field")
            )
    if status >= 500 or status == 429 or code in THROTTLING_CODES:
        return ModelServerUnavailable(f"{endpoint}: {code} (HTTP {status})")
    return ModelRequestRejected(f"{endpoint}: {code} (HTTP {status})")


class Matting(Protocol):
    """Where the Segment step gets its matte from."""

    def matte(
        self,
        data: bytes,
        subject: SubjectType,
        pipeline: Pipeline,
        image: DecodedImage,
        quality: Quality = Quality.AUTO,
    ) -> np.ndarray: ...


class SageMakerMatting:
    """The matte from a SageMaker endpoint running sagemaker/serve.py (GPU in production)."""

    def __init__(self, endpoint_name: str):
        self.endpoint_name = endpoint_name

    @staticmethod
    @cache
    def client(read_timeout: int) -> Any:
        """A runtime client whose read waits ``read_timeout`` s (botocore sets it per client)."""
        return boto3.client(
            "sagemaker-runtime",
            config=Config(
                retries={"total_max_attempts": 1},
                connect_timeout=MODEL_CONNECT_TIMEOUT,
                read_timeout=read_timeout,
            ),
        )

    def matte(
        self,
        data: bytes,
        subject: SubjectType,
        pipeline: Pipeline,
        image: DecodedImage,
        quality: Quality = Quality.AUTO,
    ) -> np.ndarray:
        # what is left of the step's deadline, less the time to compose and store the result
        left = budget(MODEL_READ_TIMEOUT + MODEL_CONNECT_TIMEOUT + STORE_RESERVE_SECONDS)
        read_timeout = int(min(MODEL_READ_TIMEOUT, left - MODEL_CONNECT_TIMEOUT - STORE_RESERVE_SECONDS))
        if read_timeout < 1:
            raise ModelTimedOut(f"{self.endpoint_name}: no time left for the model within the task's limit")
        try:
            answer = self.client(read_timeout).invoke_endpoint(
                EndpointName=self.endpoint_name,
                Body=data,
                ContentType="application/octet-stream",
                CustomAttributes=f"type={subject.value}&quality={quality.value}",
            )
        except ClientError as error:
            raise endpoint_failure(error, self.endpoint_name) from None
        except ReadTimeoutError:
            raise ModelTimedOut(f"{self.endpoint_name}: no answer within {read_timeout} s") from None
        except BotoCoreError as error:  # connection refused or reset
            raise ModelServerUnavailable(f"{self.endpoint_name}: {error}") from None
        alpha = np.asarray(Image.open(io.BytesIO(answer["Body"].read())).convert("L"), dtype=np.float32)
        return alpha * (1.0 / 255.0)


class LocalMatting:
    """The matte from the CPU pipeline in this process (deployments without a GPU endpoint)."""

    def matte(
        self,
        data: bytes,
        subject: SubjectType,
        pipeline: Pipeline,
        image: DecodedImage,
        quality: Quality = Quality.AUTO,
    ) -> np.ndarray:
        return pipeline.matte(image, subject, quality=quality)


def matting_from_settings(settings: ServiceSettings) -> Matting:
    """SageMaker's endpoint when the stack has one, else the CPU pipeline in this function."""
    endpoint = settings.sagemaker_endpoint
    return SageMakerMatting(endpoint) if endpoint else LocalMatting()


def read_capped(s3: Any, bucket: str, key: str, max_bytes: int) -> bytes:
    """An input object, refused by its size before its body is read (never a huge read)."""
    answer = s3.get_object(Bucket=bucket, Key=key)
    if answer.get("ContentLength", 0) > max_bytes:
        answer["Body"].close()
        raise errors.ImageTooLarge(
            f"is {answer['ContentLength']} bytes; at most {max_bytes} are accepted",
            field="image",
            limit=max_bytes,
        )
    body: bytes = answer["Body"].read(max_bytes + 1)
    return body


def still_processing(table: TaskTable | None, task_id: str | None) -> bool:
    """True while the task is in progress (no table configured: nothing to check)."""
    if table is None or not task_id:
        return True
    return table.get(task_id).state is TaskState.PROCESSING


def run_segment_step(
    event: dict[str, Any],
    pipeline: Pipeline,
    matting: Matting,
    s3: Any = None,
    tasks: TaskTable | None = None,
    settings: ServiceSettings | None = None,
    seconds: float | None = None,
) -> dict[str, Any]:
    """``tasks``: the task table, read just before storing (a late step stores nothing);
    ``settings``: the function's (default: read from the environment); ``seconds``: the time the
    step has (the function's remaining time): one deadline that every wait shares."""
    if seconds is None:
        return _segment(event, pipeline, matting, s3, tasks, settings)
    with deadline(time.time() + seconds - STEP_MARGIN_SECONDS):
        return _segment(event, pipeline, matting, s3, tasks, settings)


def _segment(
    event: dict[str, Any],
    pipeline: Pipeline,
    matting: Matting,
    s3: Any,
    tasks: TaskTable | None,
    settings: ServiceSettings | None,
) -> dict[str, Any]:
    s3 = s3 or boto3.client("s3")
    options = CutoutOptions.from_mapping(event.get("options") or {})
    subject = options.type.resolved
    settings = settings or ServiceSettings.from_env()
    if event.get("image_url"):
        data = settings.fetch(event["image_url"], pipeline.limits.max_bytes)
    else:
        data = read_capped(s3, event["input_bucket"], event["input_key"], pipeline.limits.max_bytes)
    if options.bg_image_url:
        options = options.with_changes(
            bg_image=settings.fetch(options.bg_image_url, pipeline.limits.max_bytes, field="bg_image_url")
        )
    elif event.get("background_key"):
        options = options.with_changes(
            bg_image=read_capped(
                s3, event["input_bucket"], event["background_key"], pipeline.limits.max_bytes
            )
        )
    timings = Timings()
    image = pipeline.decode(data, timings, options)
    alpha = (LocalMatting() if subject is SubjectType.STAMP else matting).matte(
        data, subject, pipeline, image, options.quality
    )
    # the endpoint mattes the photo as sent; a smaller size (preview, medium, ...) is cut here
    alpha = resize_matte(alpha, image.width, image.height)
    segmentation = pipeline.segmentation_from_matte(image, alpha, subject, timings, options.roi)
    result = pipeline.compose(image, segmentation, options, timings)
    stored = {"image_key": "", "mask_key": ""}
    if not still_processing(tasks, event.get("task_id")):
        raise TaskNoLongerRunning(f"task {event.get('task_id')} is no longer in progress: result not stored")
    try:
        if result.image is not None:
            s3.put_object(
                Bucket=event["result_bucket"],
                Key=event["image_key"],
                Body=result.image,
                ContentType=result.content_type,
            )
            stored["image_key"] = event["image_key"]
        if result.mask is not None:
            s3.put_object(
                Bucket=event["result_bucket"],
                Key=event["mask_key"],
                Body=result.mask,
                ContentType="image/png",
            )
            stored["mask_key"] = event["mask_key"]
    except (ClientError, BotoCoreError) as error:
        raise ResultUploadFailed(f"storing the result failed: {error}") from None
    return {
        **stored,
        "width": result.width,
        "height": result.height,
        "found": result.found,
        "timings_ms": {k: round(v, 1) for k, v in timings.items()},
    }
