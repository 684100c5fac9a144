"""From the task queue to Step Functions: one execution per task, named after the task id.

Messages are either ``{"task_id": ...}`` (from POST /v1/tasks) or S3 event notifications for
objects put under ``incoming/`` in the uploads bucket, which become tasks here: options from the
object's metadata (``x-amz-meta-type: person`` ...), the result under ``results/`` with the same
name, the task id derived from bucket, key and ETag (a repeated notification is the same task).

Usage::

    dispatcher = Dispatcher.from_env()
    dispatcher.handle_record(sqs_record)      # raises to send the message back to the queue
"""

from __future__ import annotations

import json
import os
import uuid
import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import unquote_plus

from alphacut.aws import clients
from alphacut.aws.task_service import step_input
from alphacut.aws.tasks import TaskRecord, TaskTable
from alphacut.errors import AlphacutError
from alphacut.options import CutoutOptions
from alphacut.tasks import TaskState

INCOMING_PREFIX = "incoming/"
RESULTS_PREFIX = "results/"
UPLOAD_OWNER = "s3-upload"


@dataclass
class Dispatcher:
    """Starts executions; ``wait_for_started`` then holds the invocation until they end, so the
    queue's event source mapping (MaximumConcurrency x BatchSize) bounds the tasks in flight
    and the rest wait in SQS (state 0) instead of queueing at the model, where the 30 s task
    limit would run out."""

    table: TaskTable
    state_machine_arn: str
    uploads_bucket: str
    results_bucket: str
    started: list[str] = field(default_factory=list)

    @classmethod
    def from_env(cls) -> Dispatcher:
        return cls(TaskTable.from_env(), os.environ.get("STATE_MACHINE_ARN", ""),
                   os.environ.get("UPLOADS_BUCKET", ""), os.environ.get("RESULTS_BUCKET", ""))

    @property
    def sfn(self):
        return clients.client("stepfunctions")

    @property
    def s3(self):
        return clients.client("s3")

    def handle_record(self, record) -> None:
        body = json.loads(record.body if hasattr(record, "body") else record["body"])
        if "task_id" in body:
            self.start(self.table.get(body["task_id"]))
            return
        for s3_record in body.get("Records", []):  # an S3 notification (TestEvent has none)
            bucket = s3_record["s3"]["bucket"]["name"]
            key = unquote_plus(s3_record["s3"]["object"]["key"])  # S3 events quote_plus the key
            if key.startswith(INCOMING_PREFIX):
                self.start(self.task_from_upload(bucket, key, s3_record["s3"]["object"].get("eTag", "")))

    def task_from_upload(self, bucket: str, key: str, etag: str) -> TaskRecord:
        task_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"s3://{bucket}/{key}#{etag}"))
        metadata = self.s3.head_object(Bucket=bucket, Key=key).get("Metadata", {})
        stem = str(PurePosixPath(key[len(INCOMING_PREFIX):]).with_suffix(""))
        record = TaskRecord(task_id=task_id, owner=UPLOAD_OWNER, options={}, input_key=key, source_key=key,
                            extra={"result_stem": RESULTS_PREFIX + stem, "result_bucket": bucket})
        try:
            record.options = CutoutOptions.from_mapping(metadata).to_dict()
        except AlphacutError as error:
            record.options = CutoutOptions().to_dict()
            self.table.create(record)
            self.table.fail(task_id, TaskState.FAILED, f"object metadata: {error}")
            return self.table.get(task_id)
        self.table.create(record)  # False for a repeated notification: same task, same id
        return self.table.get(task_id)

    def start(self, record: TaskRecord) -> None:
        if record.state is not TaskState.QUEUED:
            return  # started or finished already: a duplicated message
        try:
            execution = self.sfn.start_execution(
                stateMachineArn=self.state_machine_arn, name=record.task_id,
                input=json.dumps(step_input(record, self.uploads_bucket, self.results_bucket)))
            self.started.append(execution["executionArn"])
        except self.sfn.exceptions.ExecutionAlreadyExists:
            pass  # the name is the task id: the first message already started it

    def wait_for_started(self, seconds_left, margin: float = 5.0, poll: float = 0.5) -> None:
        """Back-pressure: return when the executions this invocation started have ended, or
        when ``seconds_left()`` falls to ``margin`` (they go on regardless)."""
        running = list(self.started)
        self.started.clear()
        while running and seconds_left() > margin:
            running = [arn for arn in running
                       if self.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"]
            if running:
                time.sleep(poll)
