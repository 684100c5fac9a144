"""Async cutout tasks (the PicWish-style task contract) on S3, DynamoDB and SQS: what POST/GET
/v1/tasks and the Notify function do.

The image goes to S3, the task record to DynamoDB (state 0), the task id to SQS; the dispatch
function starts the state machine. ``sync=1`` waits for the final state (within the API's
time limit) and answers the finished task.

Usage::

    service = TaskService.from_settings(ServiceSettings.from_env())
    answer = service.submit(request, options, owner="key-id", return_type="url", sync=False)
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from botocore.exceptions import ClientError

from alphacut.aws import clients
from alphacut.aws.callbacks.slots import CallbackSlots
from alphacut.aws.objects import object_gone
from alphacut.aws.tasks.results import ResultStore
from alphacut.aws.tasks.table import LISTED_OWNER, TaskRecord, TaskTable
from alphacut.callbacks import Signing
from alphacut.caller_scope import current_account, is_test
from alphacut.errors import ImageTooLarge, ResultExpired
from alphacut.options import CutoutOptions, OutputKind
from alphacut.result_links import LinkSigner
from alphacut.settings import ServiceSettings
from alphacut.task_states import FAILURE_MESSAGES, TaskState
from alphacut.urlfetch import check_callback_url


def payer_fields(owner: str) -> dict[str, Any]:
    """Who pays for a task the key ``owner`` submits in this call (``alphacut.caller_scope``): its
    account, where that is not the key itself, and whether it is a test key's."""
    fields: dict[str, Any] = {}
    account = current_account()
    if account and account != owner:
        fields["account"] = account
    if is_test():
        fields["test"] = True
    return fields


class CreditHold(Protocol):
    """A credit-based call that submits a task (``alphacut.api.credits.CreditGate``)."""

    def reserve_task(self, task_id: str, options: CutoutOptions) -> None: ...

    def release_task(self, task_id: str) -> None: ...

    def task_spending(self) -> dict[str, Any]: ...


# a callback's result links: a receiver may fetch them long after the callback (signed links,
# not presigned URLs, so the sender's credentials do not bound them)
CALLBACK_LINK_SECONDS = 24 * 3600
# sync=1 answers this long before the invocation's own deadline (the answer must still go out)
SYNC_ANSWER_MARGIN_SECONDS = 2.0
POLL_SECONDS = 0.25


def step_input(record: TaskRecord, uploads_bucket: str, result_bucket: str) -> dict[str, Any]:
    """What the state machine (and its Segment step) gets for a task: keys and options, no pixels."""
    options = record.cutout_options
    stem = record.extra.get("result_stem") or f"tasks/{record.task_id}"
    event = {
        "task_id": record.task_id,
        "options": record.options,
        "result_bucket": record.extra.get("result_bucket") or result_bucket,
        "image_key": f"{stem}.{options.format.value}" if options.output is not OutputKind.MASK else "",
        "mask_key": f"{stem}_mask.png" if options.output is not OutputKind.IMAGE else "",
    }
    if record.extra.get("callback_url"):
        event["callback_url"] = record.extra["callback_url"]
    if record.test:  # a test key's result is marked (alphacut.watermark), with its account's mark
        event["test"] = True
        event["test_account"] = record.account
    if not record.source_key:  # a key's task: its matte kept for a touch-up, as the account's
        event["kept_owner"] = record.payer
    if record.extra.get("refine_key"):
        event["refine_key"] = record.extra["refine_key"]
    if record.source_key:  # an upload: its result is stored only while it is the newest put
        event["source_key"] = record.source_key
        event["put_order"] = record.extra.get("put_order", "")
    if record.image_url:
        event["image_url"] = record.image_url
    else:
        event["input_key"] = record.input_key
    event["input_bucket"] = uploads_bucket
    if record.extra.get("background_key"):
        event["background_key"] = record.extra["background_key"]
    return event


@dataclass
class TaskService:
    uploads_bucket: str
    results_bucket: str
    queue_url: str
    table_name: str
    max_bytes: int = 15 * 1024 * 1024
    # hosts a callback may name though they are not public (IMAGE_URL_ALLOWED_HOSTS; local tests)
    allowed_hosts: tuple[str, ...] = ()
    callback_slots: CallbackSlots | None = None  # each key's callbacks in flight, capped

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> TaskService:
        """What the function was given (the notify function has no queue nor uploads bucket)."""
        return cls(
            settings.uploads_bucket,
            settings.results_bucket,
            settings.task_queue_url,
            settings.tasks_table,
            allowed_hosts=settings.url_allowed_hosts,
            callback_slots=CallbackSlots(settings.usage_table) if settings.usage_table else None,
        )

    @cached_property
    def table(self) -> TaskTable:
        return TaskTable(self.table_name)

    @property
    def s3(self) -> Any:
        return clients.client("s3")

    @property
    def sqs(self) -> Any:
        return clients.client("sqs")

    def submit(
        self,
        image: bytes | None,
        image_url: str | None,
        options: CutoutOptions,
        owner: str,
        callback_url: str | None = None,
        api_base_url: str = "",
        credit_hold: CreditHold | None = None,
        name: str = "",
    ) -> str:
        """A new task, queued; its id. ``credit_hold``: a credit-based key's call, which reserves
        the task's price before anything is stored and gets it back if the task is never queued.
        ``name``: the store's label for it (answered back)."""
        if image is not None and len(image) > self.max_bytes:
            raise ImageTooLarge(
                f"is {len(image)} bytes; at most {self.max_bytes} are accepted",
                field="image_file",
                limit=self.max_bytes,
            )
        task_id = str(uuid.uuid4())
        record = TaskRecord(task_id=task_id, owner=owner, options=options.to_dict(), image_url=image_url)
        record.extra.update(payer_fields(owner))
        record.extra[LISTED_OWNER] = owner  # GET /v1/tasks/recent lists it
        if name:
            record.extra["name"] = name
        slot = bool(callback_url) and self.callback_slots is not None
        if callback_url:
            check_callback_url(callback_url, self.allowed_hosts)
            record.extra["callback_url"] = callback_url
            record.extra["api_base_url"] = api_base_url  # where the callback's result links point
            if self.callback_slots is not None:
                self.callback_slots.take(owner, task_id)
        try:
            if credit_hold is not None:
                credit_hold.reserve_task(task_id, options)
                record.extra.update(credit_hold.task_spending())  # given back if the task delivers nothing
            try:
                self._store_and_queue(record, image, options)
            except BaseException:
                if credit_hold is not None:
                    credit_hold.release_task(task_id)
                raise
        except BaseException:
            if slot and self.callback_slots is not None:
                self.callback_slots.give_back(owner, task_id)
            raise
        return task_id

    def callback_done(self, task_id: str) -> None:
        """The task's callback was delivered, dropped or tried for the last time: its key's slot
        comes back."""
        if self.callback_slots is not None:
            self.callback_slots.give_back(self.table.get(task_id).owner, task_id)

    def _store_and_queue(self, record: TaskRecord, image: bytes | None, options: CutoutOptions) -> None:
        task_id = record.task_id
        if image is not None:
            record.input_key = f"tasks/{task_id}/input"
            self.s3.put_object(Bucket=self.uploads_bucket, Key=record.input_key, Body=image)
        # the background and a touch-up's strokes wait beside the input; the record keeps their keys
        for name, data in (("background", options.bg_image), ("refine", options.refine)):
            if data is not None:
                record.extra[f"{name}_key"] = f"tasks/{task_id}/{name}"
                self.s3.put_object(Bucket=self.uploads_bucket, Key=record.extra[f"{name}_key"], Body=data)
        self.table.create(record)
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"task_id": task_id}))

    def wait(
        self,
        task_id: str,
        owner: str,
        seconds_left: Callable[[], float],
        margin: float = SYNC_ANSWER_MARGIN_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> TaskRecord:
        """The task once final, or as it stands when ``seconds_left()`` (the invocation's remaining
        time) comes down to ``margin``: a sync=1 caller always gets an answer, never a timeout."""
        while True:
            record = self.table.get(task_id, owner)
            left = seconds_left() - margin
            if record.state.is_final or left <= 0:
                return record
            sleep(min(POLL_SECONDS, left))

    def notify(
        self,
        task_id: str,
        callback_url: str,
        signer: LinkSigner | None,
        allowed_hosts: Iterable[str] = (),
        signing_for: Callable[[str], Signing] | None = None,
    ) -> int:
        """POST the finished task (the PicWish-style envelope, with its key's id) to its callback,
        signed with that key's callback secrets (``signing_for``: ``CallbackSecrets.signing``;
        ``alphacut.callbacks``). Its result links
        are the API's own signed links (``/v1/results/<token>``, for ``CALLBACK_LINK_SECONDS``), which
        outlive the credentials of the function that sends them; ``CallbackFailed`` when a retry may
        deliver it."""
        from alphacut.callbacks import deliver

        record = self.table.get(task_id)
        store = ResultStore(
            self.results_bucket, CALLBACK_LINK_SECONDS, record.extra.get("api_base_url", ""), signer
        )
        answer = {"status": 200, "message": "success", "data": self.describe(record, "url", store)}
        signing = signing_for(record.owner) if signing_for is not None else None
        return deliver(callback_url, answer, signing, allowed_hosts)

    def describe(
        self, record: TaskRecord, return_type: str, store: ResultStore, look: bool = True
    ) -> dict[str, Any]:
        """The PicWish-style task object, with the result as signed URLs or base64; ``look=False``:
        links signed without asking S3 whether the result is still there (a list of many tasks,
        where an expired one's link answers 410 itself)."""
        options = record.cutout_options
        data: dict[str, Any] = {
            "task_id": record.task_id,
            "state": int(record.state),
            "progress": record.state.progress,
            "type": options.type.value,
            "output_type": options.output.value,
            "return_type": return_type,
            "created_at": record.created_at,
            "processed_at": record.processed_at,
            "completed_at": record.completed_at,
        }
        if record.extra.get("name"):
            data["name"] = record.extra["name"]
        if record.state is TaskState.DONE:
            for name in ("image", "mask"):
                key = record.extra.get(f"{name}_key")
                if not key:
                    continue
                if return_type == "base64":
                    data[name] = base64.b64encode(self._result(record, key)).decode("ascii")
                else:
                    if look and not store.exists(key):
                        raise self._expired(record)
                    data[name] = store.sign(key)
            data["width"] = record.extra.get("result_width")
            data["height"] = record.extra.get("result_height")
            if record.extra.get("kept_result_id"):
                data["result_id"] = record.extra["kept_result_id"]
            if record.extra.get("result_verdict"):
                data.update(json.loads(record.extra["result_verdict"]))
            if record.extra.get("result_check"):
                data["check"] = json.loads(record.extra["result_check"])
        elif record.state.value < 0:
            data["error"] = {
                "name": record.extra.get("error_name", ""),
                "message": FAILURE_MESSAGES[record.state],
            }
        return data

    def _result(self, record: TaskRecord, key: str) -> bytes:
        try:
            body: bytes = self.s3.get_object(Bucket=self.results_bucket, Key=key)["Body"].read()
        except ClientError as error:
            if not object_gone(error):  # 403 too: S3's answer to a role that may not list the bucket
                raise
            raise self._expired(record) from None
        return body

    @staticmethod
    def _expired(record: TaskRecord) -> ResultExpired:
        return ResultExpired(
            f"the result of task {record.task_id} was deleted at the end of its storage lifetime: "
            "submit the task again",
            field="task_id",
        )
