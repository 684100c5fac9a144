"""How an execution ends its task, in one Lambda step each: the state machine's Finish (done:
marked, charged once, its callback queued) and FailTask (failed: marked, its reserved credits
given back, its callback queued). One step each in place of the chain of states they replace
(mark, charge, choose, notify, check): Step Functions bills every state entered, and those were
most of an async photo's cost (docs/benchmarks.md, "Tasks: state transitions").

The guarantees stay as they were. The marks are conditional (only the execution that holds the
task in progress ends it; a retried step writes the same again). The charge is the one charge
transaction with its marker (a retry charges nothing). A callback is queued once: the task
records that it was. Finish queues the callback even when the charge fails, then raises
``ChargeFailed``: the step is retried, and if it never goes through the execution fails with that
error and the Finalize function records the task as unbilled. A step that fails for good any other
way fails the execution, and the Finalize function ends the task (or charges a delivered one).

Usage::

    ends = TaskEnds.from_settings(ServiceSettings.from_env())
    ends.finish({"task_id": ..., "execution_id": ..., "result": {...}})   # "done" | "ended_elsewhere"
    ends.fail({"task_id": ..., "error": {"Error": "CorruptImage", "Cause": "..."}})  # "failed" | ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

from aws_lambda_powertools import Logger

from alphacut.aws import clients
from alphacut.aws.callbacks.queue import CallbackQueue
from alphacut.aws.ledger.usage import UsageMeter
from alphacut.aws.tasks.table import TaskRecord, TaskTable, is_billable, is_touch_up
from alphacut.pricing import CreditPrices
from alphacut.settings import ServiceSettings
from alphacut.task_states import TaskState, failure_state

logger = Logger(child=True)
# failures before any model ran: the download, its size, the decoding (never an unpaid run)
BEFORE_THE_MODEL = frozenset(
    {TaskState.DOWNLOAD_FAILED, TaskState.DOWNLOAD_TOO_LARGE, TaskState.INVALID_IMAGE}
)


class ChargeFailed(Exception):
    """The task was delivered (and its callback queued) but its charge did not go through."""


@dataclass
class TaskAdapters:
    """What ends tasks needs (the state machine's last steps, and the Finalize function)."""

    table: TaskTable
    meter: UsageMeter | None
    callbacks: CallbackQueue | None = None
    prices: CreditPrices = field(default_factory=CreditPrices)

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Self:
        callbacks = (
            CallbackQueue(clients.client("sqs"), settings.callback_queue_url)
            if settings.callback_queue_url
            else None
        )
        return cls(
            TaskTable.from_settings(settings),
            UsageMeter.from_settings(settings),
            callbacks,
            settings.credit_prices,
        )

    def price_of(self, record: TaskRecord) -> int:
        """What the task costs, in millicredits, by the options it was submitted with."""
        return 0 if record.test else self.prices.for_options(record.cutout_options)

    def release_and_call_back(self, record: TaskRecord) -> None:
        """A task that ended undelivered: the credits or the quota slot it reserved come back, and
        its callback goes out if it asked for one. One that failed once its model may have run (not
        in the download or the decoding) is one of its account's unpaid runs: failing tasks on
        purpose (an option only the matte rules out) never runs the model for free."""
        if self.meter is not None:
            self.meter.release_task(record.payer, record.task_id, record.spent, record.slot)
            # sent to the endpoint (its waiting token written): the model may have run whatever
            # failed after it; else only a failure past the download and the decoding
            sent = bool(record.extra.get("task_token"))
            model_may_have_run = record.processed_at is not None and (
                sent or record.state not in BEFORE_THE_MODEL
            )
            if model_may_have_run and not is_touch_up(record):
                self._count_unpaid_run(record.account, record.task_id)
        self.call_back(record)

    def _count_unpaid_run(self, owner: str, task_id: str) -> None:
        """A task whose model ran for nothing charged (no subject, a failure after it) is one of its
        account's unpaid runs of the day, which its task submissions are refused past
        (``alphacut.aws.ledger.limits``); a count that cannot be written is logged, never the task's
        failure."""
        try:
            self.meter.limits.count_unpaid_run(owner, 0, once_for=task_id)  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001
            logger.warning("an unpaid task run could not be counted", extra={"owner": owner})

    def call_back(self, record: TaskRecord) -> None:
        """Queue the task's callback, once: a second ending (a retry, the finalizer after a step)
        finds it queued and leaves it."""
        url = record.extra.get("callback_url")
        if not url or self.callbacks is None or record.extra.get("callback_queued"):
            return
        self.callbacks.enqueue(record.task_id, str(url))
        self.table.note_callback_queued(record.task_id)


class TaskEnds(TaskAdapters):
    def finish(self, step: dict[str, Any]) -> str:
        task_id = str(step["task_id"])
        if not self.table.mark_done(task_id, str(step["execution_id"]), dict(step.get("result") or {})):
            return "ended_elsewhere"  # stopped, timed out or ended by another execution meanwhile
        record = self.table.get(task_id)
        failure: Exception | None = None
        if self.meter is not None:
            price = self.price_of(record)
            try:
                self.meter.settle_task(
                    record.payer, task_id, is_billable(record), price, record.spent, record.slot
                )
            except Exception as error:  # noqa: BLE001 - delivered: the callback goes out first
                failure = error
            if not is_billable(record) and not is_touch_up(record):
                self._count_unpaid_run(record.account, task_id)
        self.call_back(record)
        if failure is not None:
            raise ChargeFailed(f"the task was delivered but its charge failed: {failure}") from failure
        return "done"

    def fail(self, step: dict[str, Any]) -> str:
        task_id = str(step["task_id"])
        error = dict(step.get("error") or {})
        name = str(error.get("Error") or "TaskFailed")
        if not self.table.fail(task_id, failure_state(name), str(error.get("Cause") or "")[:32768], name):
            return "ended_elsewhere"  # final already: whoever ended it settled it
        self.release_and_call_back(self.table.get(task_id))
        return "failed"
