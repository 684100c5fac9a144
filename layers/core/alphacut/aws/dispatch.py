"""From the task queue to Step Functions: one execution per task, named after the task id.

Messages are either ``{"task_id": ...}`` (from POST /v1/tasks) or S3 event notifications for
objects put under ``incoming/`` in the uploads bucket, which become tasks here: options from the
object's metadata (``x-amz-meta-type: person`` ...), the result under ``results/`` with the same
name, the task id derived from bucket, key, ETag and the put's sequencer (a repeated notification
is the same task; a new put of the same bytes is a new task).

A message no retry can mend (not JSON, no such task, a task record that cannot become a step
input) is logged and dropped, its task (if any) ended as failed; anything else raises, so the
message comes back, and after the queue's maxReceiveCount reaches the dead-letter queue, whose
consumer ends its task (``alphacut.aws.finalize``).

Usage::

    dispatcher = Dispatcher.from_settings(ServiceSettings.from_env())
    dispatcher.handle_record(sqs_record)      # raises to send the message back to the queue
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, NamedTuple
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger

from alphacut.aws import clients
from alphacut.aws.task_service import step_input
from alphacut.aws.task_table import TaskRecord, TaskTable
from alphacut.errors import AlphacutError, NotFound
from alphacut.options import CutoutOptions
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
        extra={"result_stem": RESULTS_PREFIX + stem, "result_bucket": upload.bucket},
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


@dataclass
class Dispatcher:
    """Starts executions; ``wait_for_started`` then holds the invocation until their tasks are
    final, so the queue's event source mapping (MaximumConcurrency x BatchSize) bounds the tasks
    in flight and the rest wait in SQS (state 0) instead of queueing at the model, where the 30 s
    task limit would run out."""

    table: TaskTable
    state_machine_arn: str
    uploads_bucket: str
    results_bucket: str
    max_bytes: int = field(default_factory=lambda: EngineSettings.from_env().limits.max_bytes)
    started: list[str] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Dispatcher:
        return cls(
            TaskTable.from_settings(settings),
            settings.require("state_machine_arn"),
            settings.uploads_bucket,
            settings.results_bucket,
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
        return self.table.get(task_id)

    def start(self, record: TaskRecord) -> None:
        if record.state is not TaskState.QUEUED:
            return  # started or finished already: a duplicated message
        try:
            step = step_input(record, self.uploads_bucket, self.results_bucket)
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
            self.started.append(record.task_id)
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

    def wait_for_started(
        self, seconds_left: Callable[[], float], margin: float = 5.0, poll: float = 0.5
    ) -> None:
        """Back-pressure: return when the tasks this invocation started are final (the model is
        done with them; their callbacks may still be retried), or when ``seconds_left()`` falls
        to ``margin`` (they go on regardless)."""
        running = list(self.started)
        self.started.clear()
        while running and seconds_left() > margin:
            running = [task_id for task_id in running if not self._final_or_gone(task_id)]
            if running:
                time.sleep(poll)

    def _final_or_gone(self, task_id: str) -> bool:
        try:
            return self.table.get(task_id).state.is_final
        except NotFound:
            return True
