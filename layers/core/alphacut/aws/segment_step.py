"""The state machine's Segment step: input from S3 (or its image_url), the matte from the
SageMaker endpoint (or the CPU pipeline in this Lambda), the cutout composed and stored in S3.

Errors leave as the exception classes the state machine's Catch table maps to seed 002 states
(``alphacut.tasks.FAILURE_STATES``); an endpoint that cannot answer raises
``ModelServerUnavailable``, which the state machine retries.

Step input (from the task record)::

    {"task_id": "...", "input_bucket": "...", "input_key": "...",   # or "image_url": "https://..."
     "options": {...CutoutOptions...}, "result_bucket": "...", "image_key": "...", "mask_key": "..."}
"""

from __future__ import annotations

import io
import json
import os
from functools import cached_property

import boto3
import numpy as np
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from PIL import Image

from alphacut import errors
from alphacut.api.settings import ServiceSettings
from alphacut.options import CutoutOptions, SubjectType
from alphacut.pipeline import Pipeline, Timings
from alphacut.tasks import ResultUploadFailed
from alphacut.urlfetch import fetch_image


class ModelServerUnavailable(Exception):
    """The model endpoint did not answer (down, throttled, 5xx): worth a retry."""


_ERRORS_BY_CODE = {cls.code: cls for cls in vars(errors).values()
                   if isinstance(cls, type) and issubclass(cls, errors.AlphacutError)}


class SageMakerMatting:
    """The matte from a SageMaker endpoint running sagemaker/serve.py (GPU in production)."""

    def __init__(self, endpoint_name: str):
        self.endpoint_name = endpoint_name

    @cached_property
    def client(self):
        return boto3.client("sagemaker-runtime", config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=55))

    def matte(self, data: bytes, subject: SubjectType, pipeline: Pipeline, image) -> np.ndarray:
        try:
            answer = self.client.invoke_endpoint(EndpointName=self.endpoint_name, Body=data,
                                                 ContentType="application/octet-stream",
                                                 CustomAttributes=f"type={subject.value}")
        except ClientError as error:
            response = error.response
            if response["Error"]["Code"] == "ModelError" and 400 <= int(response.get("OriginalStatusCode", 500)) < 500:
                detail = json.loads(response.get("OriginalMessage") or "{}")
                raise _ERRORS_BY_CODE.get(detail.get("code"), errors.CorruptImage)(
                    detail.get("message", "rejected by the model server"), field=detail.get("field")) from None
            raise ModelServerUnavailable(f"{self.endpoint_name}: {response['Error'].get('Message', error)}") from None
        except BotoCoreError as error:  # connection refused, timeouts
            raise ModelServerUnavailable(f"{self.endpoint_name}: {error}") from None
        alpha = np.asarray(Image.open(io.BytesIO(answer["Body"].read())).convert("L"), dtype=np.float32)
        return alpha * (1.0 / 255.0)


class LocalMatting:
    """The matte from the CPU pipeline in this process (deployments without a GPU endpoint)."""

    def matte(self, data: bytes, subject: SubjectType, pipeline: Pipeline, image) -> np.ndarray:
        return pipeline.matte(image, subject)


def matting_from_env():
    endpoint = os.environ.get("SAGEMAKER_ENDPOINT", "")
    return SageMakerMatting(endpoint) if endpoint else LocalMatting()


def run_segment_step(event: dict, pipeline: Pipeline, matting, s3=None) -> dict:
    s3 = s3 or boto3.client("s3")
    options = CutoutOptions.from_mapping(event.get("options") or {})
    subject = options.type.resolved
    if event.get("image_url"):
        data = fetch_image(event["image_url"], pipeline.limits.max_bytes,
                           allowed_hosts=ServiceSettings.from_env().url_allowed_hosts)
    else:
        data = s3.get_object(Bucket=event["input_bucket"], Key=event["input_key"])["Body"].read()
    timings = Timings()
    image = pipeline.decode(data, timings)
    alpha = (LocalMatting() if subject is SubjectType.STAMP else matting).matte(data, subject, pipeline, image)
    segmentation = pipeline.finish(image, alpha, subject, timings)
    result = pipeline.compose(image, segmentation, options, timings)
    stored = {"image_key": "", "mask_key": ""}
    try:
        if result.image is not None:
            s3.put_object(Bucket=event["result_bucket"], Key=event["image_key"], Body=result.image,
                          ContentType=result.content_type)
            stored["image_key"] = event["image_key"]
        if result.mask is not None:
            s3.put_object(Bucket=event["result_bucket"], Key=event["mask_key"], Body=result.mask,
                          ContentType="image/png")
            stored["mask_key"] = event["mask_key"]
    except (ClientError, BotoCoreError) as error:
        raise ResultUploadFailed(f"storing the result failed: {error}") from None
    return {**stored, "width": result.width, "height": result.height,
            "timings_ms": {k: round(v, 1) for k, v in timings.items()}}
