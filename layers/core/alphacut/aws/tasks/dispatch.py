"""From the task queue to Step Functions: one execution per task, named after the task id.

Messages are either ``{"task_id": ...}`` (from POST /v1/tasks) or S3 event notifications for
objects put under ``incoming/`` in the uploads bucket, which become tasks here: options from the
object's metadata (``x-amz-meta-type: person`` ...), the result under ``results/`` with the same
name, the task id derived from bucket, key, ETag and the put's sequencer (a repeated notification
is the same task; a new put of the same bytes is a new task). The newest put of a key wins, whatever
order its notifications come in: a put older than one already noted ends at once (-1,
``SupersededUpload``), and one overtaken while it runs stores nothing (the Segment step checks).

Each execution's input says which path runs the model (``path``: ``gpu`` or ``cpu``,
``PathChooser``): the GPU endpoint when it has an instance, or when it is cold and more than
``GPU_BACKLOG_THRESHOLD`` tasks wait in the queue (it wakes on that backlog); the CPU (the Segment
function) when it is cold and few wait, instead of waiting minutes for an instance.

The dispatcher starts executions and returns: nothing here waits for them. Back-pressure sits with
the capacity: the endpoint's own queue, and the Segment function's reserved concurrency (its
throttled invocations are retried by the state machine with backoff and jitter).

A message no retry can mend (not JSON, no such task, a task record that cannot become a step
input) is logged and dropped, its task (if any) ended as failed; anything else raises, so the
message comes back, and after the queue's maxReceiveCount reaches the dead-letter queue, whose
consumer ends its task (``alphacut.aws.tasks.finalize``).

Usage::

    dispatcher = Dispatcher.from_settings(ServiceSettings.from_env())
    dispatcher.handle_record(sqs_record)      # raises to send the message back to the queue
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, NamedTuple
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger

from alphacut.aws import clients
from alphacut.aws.tasks.async_inference import EndpointCapacity
from alphacut.aws.tasks.service import step_input
from alphacut.aws.tasks.table import TaskRecord, TaskTable
from alphacut.errors import AlphacutError, NotFound
from alphacut.options import CutoutOptions, SubjectType
from alphacut.settings import EngineSettings, ServiceSettings
from alphacut.task_states import TaskState

INCOMING_PREFIX = "incoming/"
RESULTS_PREFIX = "results/"
UPLOAD_OWNER = "s3-upload"

logger = Logger(child=True)

# an SQS record: Powertools' SQSRecord (batch processing) or the event's plain dict (dead letters)
SqsRecord = Any


class Upload(NamedTuple):
    """One put of an object under ``incoming/``, as its S3 notification names it. ``put`` tells
    two puts of the same key (and the same bytes) apart: S3's ``sequencer``, else the event time.
    Duplicate notifications of one put carry the same values."""

    bucket: str
    key: str
    etag: str
    put: str = ""


def upload_task_id(upload: Upload) -> str:
    """An upload's task id: the same put notified twice is the same task; a new put of the same
    bytes to the same key is a new task (its execution name is new too: Step Functions refuses a
    closed execution's name for 90 days)."""
    return str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"s3://{upload.bucket}/{upload.key}#{upload.etag}#{upload.put}")
    )


def put_order(put: str) -> str:
    """A put's place among the puts of its key, as text that sorts in put order: S3's sequencers
    are hex numbers of varying length, compared after left-padding with zeros (S3's own rule);
    an event time (no sequencer) sorts as it is."""
    if put and all(c in "0123456789abcdefABCDEF" for c in put):
        return put.upper().rjust(40, "0")
    return put


def uploads_in(body: dict[str, Any]) -> Iterator[Upload]:
    """Each put an S3 notification names under ``incoming/``; folder markers (keys ending in /)
    are not images."""
    for s3_record in body.get("Records", []):  # a TestEvent has none
        bucket = s3_record["s3"]["bucket"]["name"]
        stored = s3_record["s3"]["object"]
        key = unquote_plus(stored["key"])  # S3 events quote_plus the key
        if key.startswith(INCOMING_PREFIX) and not key.endswith("/"):
            put = stored.get("sequencer") or s3_record.get("eventTime") or ""
            yield Upload(bucket, key, stored.get("eTag", ""), put)


def upload_record(upload: Upload) -> TaskRecord:
    """The task record of an upload (default options; the result under ``results/``)."""
    stem = str(PurePosixPath(upload.key[len(INCOMING_PREFIX) :]).with_suffix(""))
    return TaskRecord(
        task_id=upload_task_id(upload),
        owner=UPLOAD_OWNER,
        options=CutoutOptions().to_dict(),
        input_key=upload.key,
        source_key=upload.key,
        extra={
            "result_stem": RESULTS_PREFIX + stem,
            "result_bucket": upload.bucket,
            "put_order": put_order(upload.put),
        },
    )


def message_body(record: SqsRecord) -> dict[str, Any] | None:
    """An SQS record's body as a JSON object, or None (logged) when it is not one."""
    raw = record.body if hasattr(record, "body") else record["body"]
    try:
        body = json.loads(raw)
    except (TypeError, ValueError):
        body = None
    if not isinstance(body, dict):
        logger.error("message dropped: not a JSON object", extra={"body": str(raw)[:200]})
        return None
    return body


GPU, CPU = "gpu", "cpu"
BACKLOG_CACHE_SECONDS = 1.0


@dataclass
class PathChooser:
    """Which path runs a task's model: the CPU while the endpoint is cold and the backlog is small
    (at most ``threshold`` tasks waiting in the task queue), else the GPU endpoint. No endpoint
    (``capacity`` None): always the CPU. Stamps and touch-ups always run on the CPU (no network
    model)."""

    capacity: EndpointCapacity | None
    queue_url: str = ""
    threshold: int = 0
    _backlog: tuple[float, int] | None = None

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> PathChooser:
        if not settings.sagemaker_endpoint:
            return cls(None)
        capacity = EndpointCapacity(settings.sagemaker_endpoint, settings.endpoint_status_cache)
        return cls(capacity, settings.task_queue_url, settings.gpu_backlog_threshold)

    def backlog(self) -> int:
        """Tasks waiting in the task queue: SQS's approximate counts of its messages, visible
        and in flight (the batches dispatchers hold, this one included)."""
        now = time.monotonic()
        if self._backlog is None or now - self._backlog[0] > BACKLOG_CACHE_SECONDS:
            attributes = clients.client("sqs").get_queue_attributes(
                QueueUrl=self.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            waiting = sum(int(value) for value in attributes.values())
            self._backlog = (now, waiting)
        return self._backlog[1]

    def path(self, options: CutoutOptions) -> str:
        if self.capacity is None or options.type.resolved is SubjectType.STAMP or options.result_id:
            return CPU
        if self.capacity.instances() > 0:
            return GPU
        return GPU if self.queue_url and self.backlog() > self.threshold else CPU


@dataclass
class Dispatcher:
    """Starts one execution per task, on the path ``paths`` picks, and returns."""

    table: TaskTable
    state_machine_arn: str
    uploads_bucket: str
    results_bucket: str
    paths: PathChooser = field(default_factory=lambda: PathChooser(None))
    max_bytes: int = field(default_factory=lambda: EngineSettings.from_env().limits.max_bytes)

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Dispatcher:
        return cls(
            TaskTable.from_settings(settings),
            settings.require("state_machine_arn"),
            settings.uploads_bucket,
            settings.results_bucket,
            PathChooser.from_settings(settings),
        )

    @property
    def sfn(self) -> Any:
        return clients.client("stepfunctions")

    @property
    def s3(self) -> Any:
        return clients.client("s3")

    def handle_record(self, record: SqsRecord) -> None:
        body = message_body(record)
        if body is None:
            return
        if "task_id" in body:
            try:
                task = self.table.get(str(body["task_id"]))
            except NotFound:
                logger.error("message dropped: no such task", extra={"task_id": str(body["task_id"])[:100]})
                return
            self.start(task)
            return
        for upload in uploads_in(body):
            self.start(self.task_from_upload(upload))

    def task_from_upload(self, upload: Upload) -> TaskRecord:
        head = self.s3.head_object(Bucket=upload.bucket, Key=upload.key)
        metadata = head.get("Metadata", {})
        record = upload_record(upload)
        task_id = record.task_id
        if head.get("ContentLength", 0) > self.max_bytes:  # never read a huge object to find out
            self.table.create(record)
            self.table.fail(
                task_id,
                TaskState.DOWNLOAD_TOO_LARGE,
                f"the object is {head['ContentLength']} bytes; at most {self.max_bytes}",
                "ImageTooLarge",
            )
            return self.table.get(task_id)
        try:
            record.options = CutoutOptions.from_mapping(metadata).to_dict()
        except AlphacutError as error:
            self.table.create(record)
            self.table.fail(task_id, TaskState.FAILED, f"object metadata: {error}", "InvalidOption")
            return self.table.get(task_id)
        self.table.create(record)  # False for a repeated notification: same task, same id
        if not self.table.note_put(upload.key, record.extra["put_order"]):
            self.table.fail(
                task_id, TaskState.FAILED, "a newer upload of the same key came first", "SupersededUpload"
            )
        return self.table.get(task_id)

    def start(self, record: TaskRecord) -> None:
        if record.state is not TaskState.QUEUED:
            return  # started or finished already: a duplicated message
        try:
            step = step_input(record, self.uploads_bucket, self.results_bucket)
            step["path"] = self.paths.path(record.cutout_options)
        except (AlphacutError, KeyError, TypeError, ValueError) as error:  # a record no retry mends
            self.table.fail(
                record.task_id, TaskState.FAILED, "the task's record is not valid", "InvalidTaskRecord"
            )
            logger.error(
                "task failed: invalid record", extra={"task_id": record.task_id, "error": str(error)}
            )
            return
        try:
            self.sfn.start_execution(
                stateMachineArn=self.state_machine_arn, name=record.task_id, input=json.dumps(step)
            )
        except self.sfn.exceptions.ExecutionAlreadyExists:
            self._name_taken(record)

    def _name_taken(self, record: TaskRecord) -> None:
        """The execution name (the task id) is taken: by this task's running execution (a
        duplicated message: nothing to do), or by a closed one, which no retry can start again
        (Step Functions keeps a closed name for 90 days): the task ends failed, never left queued."""
        arn = self.state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{record.task_id}"
        status = self.sfn.describe_execution(executionArn=arn)["status"]
        if status == "RUNNING":
            return
        ended = self.table.fail(
            record.task_id,
            TaskState.FAILED,
            f"its execution name is taken by an execution that ended ({status.lower()})",
            "ExecutionNameTaken",
            only_from=(TaskState.QUEUED,),
        )
        logger.error("task failed: execution name taken", extra={"task_id": record.task_id, "ended": ended})
