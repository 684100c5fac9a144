"""The state machine's Segment and Compose steps: input from S3 (or its image_url), the matte from
the CPU pipeline in this Lambda (Segment, the CPU path) or from the one the GPU endpoint stored
(Compose, the endpoint path: ``alphacut.aws.tasks.async_inference``), the cutout composed and stored in S3.

Errors leave as the exception classes the state machine's Catch table maps to the PicWish-style task states
(``alphacut.task_states.FAILURE_STATES``). Every wait here shares one deadline that ends before the
step's own 30 s limit.

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
from collections.abc import Callable
from typing import Any, Protocol

import boto3
import numpy as np
from botocore.exceptions import BotoCoreError, ClientError
from PIL import Image

from alphacut.aws.kept_mattes import KeptMattes
from alphacut.aws.objects import refuse_oversized, s3_location
from alphacut.aws.tasks.async_inference import staged_key
from alphacut.aws.tasks.table import TaskTable
from alphacut.caller_scope import caller_scope
from alphacut.codec import DecodedImage
from alphacut.deadlines import deadline
from alphacut.errors import AlphacutError, InvalidOption
from alphacut.matte import resize_matte
from alphacut.options import DEFAULT_MODEL, CutoutOptions, Quality, SubjectType
from alphacut.pipeline import CutoutResult, Pipeline, Timings
from alphacut.settings import ServiceSettings
from alphacut.task_states import (
    ModelRunsOnTheGpu,
    ResultUploadFailed,
    SupersededUpload,
    TaskNoLongerRunning,
    TaskState,
)
from alphacut.touchup import KeptMatte

# The step runs under one deadline (``alphacut.deadlines``): the Segment function's remaining time
# less this margin. Image URL, background URL and the result's storing share it.
STEP_MARGIN_SECONDS = 1.0


class Matting(Protocol):
    """Where the Segment step gets its matte from (``image``: the photo as the model is to see it,
    ``Pipeline.decode_views``). ``runs_model``: the model runs here (this function has the models
    layer and its registry), not on the endpoint that already made the matte."""

    runs_model: bool

    def matte(
        self,
        data: bytes,
        subject: SubjectType,
        pipeline: Pipeline,
        image: DecodedImage,
        quality: Quality = Quality.AUTO,
        model: str = DEFAULT_MODEL,
    ) -> np.ndarray: ...


class StoredMatting:
    """The matte the GPU endpoint wrote to S3 (the Compose step of the endpoint path)."""

    runs_model = False

    def __init__(self, location: str, s3: Any):
        self.location, self.s3 = location, s3

    def matte(
        self,
        data: bytes,
        subject: SubjectType,
        pipeline: Pipeline,
        image: DecodedImage,
        quality: Quality = Quality.AUTO,
        model: str = DEFAULT_MODEL,
    ) -> np.ndarray:
        bucket, key = s3_location(self.location)
        body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        alpha = np.asarray(Image.open(io.BytesIO(body)).convert("L"), dtype=np.float32)
        return alpha * (1.0 / 255.0)


class LocalMatting:
    """The matte from the CPU pipeline in this process (deployments without a GPU endpoint)."""

    runs_model = True

    def matte(
        self,
        data: bytes,
        subject: SubjectType,
        pipeline: Pipeline,
        image: DecodedImage,
        quality: Quality = Quality.AUTO,
        model: str = DEFAULT_MODEL,
    ) -> np.ndarray:
        return pipeline.matte(image, subject, quality=quality, model=model)


def refuse_gpu_only(pipeline: Pipeline, options: CutoutOptions, settings: ServiceSettings) -> None:
    """A model only the GPU endpoint has goes there (``ModelRunsOnTheGpu``, which the state
    machine catches), before any input is read; with no endpoint it is the 400 it is anywhere."""
    name = options.model or DEFAULT_MODEL
    if name in pipeline.models.specs and not pipeline.runs_here(name) and settings.sagemaker_endpoint:
        raise ModelRunsOnTheGpu(f"{name} runs on the GPU endpoint only: the task goes there")


def read_capped(s3: Any, bucket: str, key: str, max_bytes: int) -> bytes:
    """An input object, refused by its size before its body is read (never a huge read)."""
    answer = s3.get_object(Bucket=bucket, Key=key)
    if answer.get("ContentLength", 0) > max_bytes:
        answer["Body"].close()
        refuse_oversized(answer["ContentLength"], max_bytes)
    body: bytes = answer["Body"].read(max_bytes + 1)
    return body


def still_processing(table: TaskTable | None, task_id: str | None) -> bool:
    """True while the task is in progress (no table configured: nothing to check)."""
    if table is None or not task_id:
        return True
    return table.get(task_id).state in (TaskState.WAITING, TaskState.PROCESSING)


def run_segment_step(
    event: dict[str, Any],
    pipeline: Pipeline,
    matting: Matting | None = None,
    s3: Any = None,
    tasks: TaskTable | None = None,
    settings: ServiceSettings | None = None,
    seconds: float | None = None,
) -> dict[str, Any]:
    """``tasks``: the task table, read just before storing (a late step stores nothing);
    ``settings``: the function's (default: read from the environment); ``seconds``: the time the
    step has (the function's remaining time): one deadline that every wait shares. ``matting``:
    default the endpoint's stored matte when the event names one (``matte.matte_location``),
    else the CPU pipeline here."""
    if seconds is None:
        return _segment(event, pipeline, matting, s3, tasks, settings)
    with deadline(time.time() + seconds - STEP_MARGIN_SECONDS):
        return _segment(event, pipeline, matting, s3, tasks, settings)


def _segment(
    event: dict[str, Any],
    pipeline: Pipeline,
    matting: Matting | None,
    s3: Any,
    tasks: TaskTable | None,
    settings: ServiceSettings | None,
) -> dict[str, Any]:
    s3 = s3 or boto3.client("s3")
    if matting is None:
        stored = (event.get("matte") or {}).get("matte_location")
        matting = StoredMatting(stored, s3) if stored else LocalMatting()
    options = CutoutOptions.from_mapping(event.get("options") or {})
    subject = options.type.resolved
    settings = settings or ServiceSettings.from_env()
    kept = KeptMattes(event["result_bucket"]) if event.get("kept_owner") else None
    touch_up = options.result_id is not None and kept is not None
    if matting.runs_model and subject is not SubjectType.STAMP and not touch_up:
        refuse_gpu_only(pipeline, options, settings)
    if touch_up:  # no input to read, no model to run: the kept photo and matte, and the strokes
        assert kept is not None and options.result_id is not None
        touched_up = KeptMatte.from_bytes(kept.get(options.result_id, event["kept_owner"]))
        data = touched_up.photo
        if event.get("refine_key"):
            strokes = read_capped(s3, event["input_bucket"], event["refine_key"], pipeline.limits.max_bytes)
            options = options.with_changes(refine=strokes)
    elif event.get("image_url") and not matting.runs_model:  # the endpoint's: what Submit staged
        data = read_capped(
            s3, event["input_bucket"], staged_key(event["task_id"], "fetched"), pipeline.limits.max_bytes
        )
    elif event.get("image_url"):
        data = settings.fetch(event["image_url"], pipeline.limits.max_bytes)
    else:
        data = read_capped(s3, event["input_bucket"], event["input_key"], pipeline.limits.max_bytes)
    if options.bg_image_url and not matting.runs_model:
        staged = staged_key(event["task_id"], "background")
        options = options.with_changes(
            bg_image=read_capped(s3, event["input_bucket"], staged, pipeline.limits.max_bytes)
        )
    elif options.bg_image_url:
        options = options.with_changes(
            bg_image=settings.fetch(options.bg_image_url, pipeline.limits.max_bytes, field="bg_image_url")
        )
    elif event.get("background_key"):
        options = options.with_changes(
            bg_image=read_capped(
                s3, event["input_bucket"], event["background_key"], pipeline.limits.max_bytes
            )
        )
    refuse_unusable_background(pipeline, options)
    # a test key's result is a marked preview: its decoding (the preview's size) and its compose,
    # marked as its account's sync results are (one mark an account, never one for every account)
    with caller_scope(str(event.get("test_account") or ""), test=bool(event.get("test"))):
        timings = Timings()
        if touch_up:
            return _store(event, s3, tasks, pipeline.retouch(touched_up, options), timings, options.result_id)
        if subject is SubjectType.STAMP:
            matting = LocalMatting()  # no model: the ink's colour, here
        if matting.runs_model:
            image, view = pipeline.decode_views(data, timings, options)
            pipeline.refuse_what_the_photo_rules_out(image, options)  # before the model, as the sync route
            model = DEFAULT_MODEL if subject is SubjectType.STAMP else pipeline.model_spec(options).name
        else:  # the endpoint checked the model and made the matte: no registry here (Compose)
            image = view = pipeline.decode(data, timings, options)
            model = options.model or DEFAULT_MODEL
        alpha = matting.matte(data, subject, pipeline, view, options.quality, model)
        # the endpoint mattes the photo as sent; a smaller size (preview, medium, ...) is cut here
        alpha = resize_matte(alpha, image.width, image.height)
        segmentation = pipeline.segmentation_from_matte(image, alpha, subject, timings, options.roi, model)
        result = pipeline.compose(image, segmentation, options, timings)
    made = kept.keep_later(data, result, event["kept_owner"]) if kept is not None else None
    if made is None:  # nothing charged: nothing kept
        return _store(event, s3, tasks, result, timings)
    result_id, keep = made
    return _store(event, s3, tasks, result, timings, result_id, keep)


def refuse_unusable_background(pipeline: Pipeline, options: CutoutOptions) -> None:
    """A background (or touch-up strokes) that cannot be used, refused before this step's model
    run, as an option (the task fails -1, naming the field): not as the photo's own decoding (-7),
    which ends the task before any model, since on the GPU path the model ran before this step
    and such a failure is one of the account's unpaid runs (``alphacut.aws.tasks.end``)."""
    try:
        pipeline.refuse_bad_extras(options)
    except InvalidOption:
        raise
    except AlphacutError as error:
        raise InvalidOption(error.message, field=error.field, limit=error.limit) from error


def _store(
    event: dict[str, Any],
    s3: Any,
    tasks: TaskTable | None,
    result: CutoutResult,
    timings: Timings,
    result_id: str | None = None,
    keep: Callable[[], object] | None = None,
) -> dict[str, Any]:
    """The result stored (and ``keep``: its matte kept for a touch-up under ``result_id``) while the
    task is still running; the step's output."""
    stored = {"image_key": "", "mask_key": ""}
    if not still_processing(tasks, event.get("task_id")):
        raise TaskNoLongerRunning(f"task {event.get('task_id')} is no longer in progress: result not stored")
    if (
        tasks is not None
        and event.get("source_key")
        and tasks.superseded(event["source_key"], event["put_order"])
    ):
        raise SupersededUpload(f"a newer upload of {event['source_key']} came: this result is not stored")
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
        if keep is not None:
            keep()
    except (ClientError, BotoCoreError) as error:
        raise ResultUploadFailed(f"storing the result failed: {error}") from None
    return {
        **stored,
        "width": result.width,
        "height": result.height,
        "found": result.found,
        # always there (the state machine's selectors need the key): a preset's check as JSON, or ""
        "check": json.dumps(result.check.to_dict(), separators=(",", ":")) if result.check else "",
        # always there too: the verdict on the matte as JSON (confidence, unsure, reasons), or ""
        "verdict": json.dumps(result.verdict.to_dict(), separators=(",", ":")) if result.verdict else "",
        "result_id": result_id or "",  # always there: a touch-up's id for this result, or ""
        "timings_ms": {k: round(v, 1) for k, v in timings.items()},
    }
