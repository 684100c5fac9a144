"""Ends the tasks nothing else would: those whose queue message reached the dead-letter queue
(never started, or a Segment step no function instance answered), and those whose state machine
execution ended without ending them (a failure no Catch can see: States.Runtime,
DataLimitExceeded, an execution stopped by hand or timed out, or a FailTask step that failed
for good). A task already final is never changed.

An execution that failed with ``ChargeFailed`` delivered its result but could not charge it
after every retry: the task stays done, and the charge is recorded as unbilled for an operator
(the function counts it in the ``UnbilledTasks`` metric, which has an alarm). An execution stopped,
timed out or failed after the task was done and before its charge went through is charged here, once. A
task this function ends gets back the credits it reserved (a credit-based key) and, if it has a
``callback_url``, its callback, through the callback queue.

Usage::

    finalizer = TaskFinalizer.from_settings(ServiceSettings.from_env())
    finalizer.dead_letter(sqs_record)                 # -> "ended" | "not_queued" | "dropped"
    finalizer.execution_ended(event["detail"])   # -> "ended" | "charged" | "final_already" | "unbilled"
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from alphacut.aws import clients
from alphacut.aws.tasks.dispatch import SqsRecord, message_body, upload_record, uploads_in
from alphacut.aws.tasks.end import TaskAdapters
from alphacut.aws.tasks.segment_queue import end_lost_step
from alphacut.aws.tasks.table import is_billable
from alphacut.errors import NotFound
from alphacut.task_states import TaskState

logger = Logger(child=True)

CHARGE_FAILED = "ChargeFailed"  # the Finish step's error when its charge never went through (tasks.end)
ENDED_BY_STATUS = {"TIMED_OUT": TaskState.TIMED_OUT, "FAILED": TaskState.FAILED, "ABORTED": TaskState.FAILED}


class TaskFinalizer(TaskAdapters):
    def _ended(self, task_id: str) -> None:
        """A task this function just ended: the credits it reserved come back, and its callback
        goes out if it asked for one (once)."""
        self.release_and_call_back(self.table.get(task_id))

    def dead_letter(self, record: SqsRecord) -> str:
        """A message the dispatcher never managed to start: its task ends failed, if still queued."""
        body = message_body(record)
        if body is None:
            return "dropped"
        if "task_token" in body:  # a Segment step no instance answered: it fails (-8)
            attributes = record.attributes if hasattr(record, "attributes") else record.get("attributes", {})
            receives = int(dict(attributes or {}).get("ApproximateReceiveCount", 0) or 0)
            return end_lost_step(clients.client("stepfunctions"), body, receives)
        task_ids = [str(body["task_id"])] if "task_id" in body else []
        for upload in uploads_in(body):
            record = upload_record(upload)
            self.table.create(record)  # the upload may never have become a task
            task_ids.append(record.task_id)
        ended = [
            self.table.fail(
                task_id,
                TaskState.FAILED,
                "the task could not be started",
                "DispatchFailed",
                only_from=(TaskState.QUEUED,),
            )
            for task_id in task_ids
        ]
        for task_id, did in zip(task_ids, ended, strict=True):
            if did:
                self._ended(task_id)
        logger.warning("dead letter", extra={"task_ids": task_ids, "ended": ended})
        return "ended" if any(ended) else ("not_queued" if task_ids else "dropped")

    def execution_ended(self, detail: dict[str, Any]) -> str:
        """An execution that FAILED, TIMED_OUT or was ABORTED: its task ends (-8 for a time-out,
        -1 otherwise) unless the state machine ended it already."""
        task_id, status = detail.get("name", ""), detail.get("status", "")
        if detail.get("error") == CHARGE_FAILED:
            return self._unbilled(task_id, detail.get("cause") or "")
        state = ENDED_BY_STATUS.get(status)
        if state is None or not task_id:
            return "ignored"
        ended = self.table.fail(
            task_id,
            state,
            f"the task's execution ended: {status.lower()}",
            f"Execution{status.title().replace('_', '')}",
        )
        logger.warning("execution ended", extra={"task_id": task_id, "status": status, "ended": ended})
        if ended:
            self._ended(task_id)
            return "ended"
        return self._charge_if_delivered(task_id, status)

    def _charge_if_delivered(self, task_id: str, status: str) -> str:
        """An execution that ended between the task done and a charge that went through: the result
        was delivered, so it is charged here, once (the charge marker refuses a second one);
        a charge that fails here too is recorded unbilled."""
        try:
            record = self.table.get(task_id)
        except NotFound:
            return "final_already"
        if record.state is not TaskState.DONE or self.meter is None:
            return "final_already"
        if not is_billable(record):
            self.meter.release_task(record.payer, task_id, record.spent, record.slot)  # empty: never charged
            return "final_already"
        try:
            charged = self.meter.charge_task(record.payer, task_id, price=self.price_of(record))
        except Exception as error:  # noqa: BLE001 - any failure: an operator bills it by hand
            self.meter.record_unbilled(record.payer, task_id, f"execution {status.lower()}: {error}")
            logger.error("task delivered but not charged", extra={"task_id": task_id, "owner": record.owner})
            return "unbilled"
        logger.warning(
            "delivered task charged by the finalizer", extra={"task_id": task_id, "charged": charged}
        )
        return "charged" if charged else "charged_already"

    def _unbilled(self, task_id: str, cause: str) -> str:
        try:
            owner = self.table.get(task_id).payer
        except NotFound:
            owner = ""
        if self.meter is not None:
            if self.meter.is_charged(task_id):
                return "charged_already"
            self.meter.record_unbilled(owner, task_id, cause or CHARGE_FAILED)
        logger.error("task delivered but not charged", extra={"task_id": task_id, "owner": owner})
        return "unbilled"
