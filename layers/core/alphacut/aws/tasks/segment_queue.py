"""The CPU path's queue: the Segment step sends its task and its token to the Segment queue
(``sqs:sendMessage.waitForTaskToken``); the Segment function, fed by an event source mapping whose
``MaximumConcurrency`` is the function's concurrency, runs the step and ends it with
``SendTaskSuccess`` or ``SendTaskFailure``. A freed instance takes the next task at once, where a
throttled invocation retried with backoff leaves instances idle; no state transition is spent on
retries. Failures end the step under the exception's class name, the state machine's error names.

A message whose function never answers (killed, out of time) comes back after the queue's
visibility timeout and, after its last receive, lands in the dead-letter queue, where
``end_lost_step`` fails its step (``Sandbox.Timedout``: the task ends in -8).

Usage::

    worker = SegmentQueueWorker(sfn)
    worker.handle(json.loads(record.body), lambda task: run_segment_step(task, pipeline, ...))
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

logger = Logger(child=True)

# SendTask* answers for a step that ended already (timed out, execution stopped, a redelivery)
STEP_ENDED = ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist")
CAUSE_LIMIT = 32768  # SendTaskFailure's cause, in characters
LOST_ERROR = "Sandbox.Timedout"


class SegmentQueueWorker:
    """Runs one queued Segment step and ends it by its token."""

    def __init__(self, sfn: Any):
        self.sfn = sfn

    def handle(self, message: dict[str, Any], run: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        task, token = message["task"], message["task_token"]
        try:
            output = run(task)
        except Exception as error:  # noqa: BLE001 - every failure ends the step under its name
            self._end(token, task, error=type(error).__name__, cause=str(error))
            return
        self._end(token, task, output=output)

    def _end(
        self, token: str, task: dict[str, Any], output: Any = None, error: str = "", cause: str = ""
    ) -> None:
        try:
            if error:
                self.sfn.send_task_failure(taskToken=token, error=error, cause=cause[:CAUSE_LIMIT])
            else:
                self.sfn.send_task_success(taskToken=token, output=json.dumps(output))
        except ClientError as failure:
            if failure.response["Error"]["Code"] in STEP_ENDED:
                logger.warning("segment step ended already", extra={"task_id": task.get("task_id")})
                return
            raise  # the message comes back: the step runs again (it stores only while in progress)


def end_lost_step(sfn: Any, message: dict[str, Any], receives: int) -> str:
    """A Segment message that reached the dead-letter queue: its step fails (-8)."""
    token = message.get("task_token")
    if not token:
        return "dropped"
    cause = f"the Segment function ended without an answer {receives} times"
    try:
        sfn.send_task_failure(taskToken=token, error=LOST_ERROR, cause=cause)
    except ClientError as failure:
        if failure.response["Error"]["Code"] in STEP_ENDED:
            return "not_waiting"
        raise
    return "ended"
