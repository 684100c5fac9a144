"""The task table (DynamoDB): one item per task, written by the tasks API, the state machine
and the S3 upload trigger.

Item: ``task_id`` (key), ``owner`` (the API key id that made it), ``state`` (the PicWish-style task state),
``progress``, ``created_at`` (unix s), ``options`` (JSON), ``input_key`` or ``image_url``,
``source_key`` (S3 uploads), ``expires_at`` (TTL), and what the state machine adds
(``processed_at_iso``, ``completed_at_iso``, ``image_key``, ``mask_key``, ``error_name``...).

Usage::

    table = TaskTable.from_settings(ServiceSettings.from_env())   # TASKS_TABLE
    table.create(task)                                  # refuses a duplicate task_id
    table.get("3f2a...", owner="key-id")                # NotFound for another owner's task
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import ClientError

from alphacut.aws.ledger.key_spend import SPENT, SPENT_DAY
from alphacut.aws.ledger.limits import SLOT_DAY, SLOT_HOLDER
from alphacut.aws.ledger.usage import TaskSlot, TaskSpent
from alphacut.caller_scope import test_payer
from alphacut.errors import NotFound
from alphacut.options import CutoutOptions
from alphacut.settings import ServiceSettings
from alphacut.task_states import TaskState

TASK_TTL_SECONDS = 7 * 24 * 3600
IN_PROGRESS = (TaskState.QUEUED, TaskState.PREPARING, TaskState.WAITING, TaskState.PROCESSING)
SOURCE_KEY_INDEX = "by_source_key"
# a key's tasks, newest first: only the API's tasks carry ``listed_owner`` (a sparse index: S3
# uploads, all under one owner, would make one hot partition of it and throttle the table's writes)
OWNER_INDEX, LISTED_OWNER = "by_owner", "listed_owner"
# one item per uploaded key: the order of its newest put (``note_put``), kept as long as an upload
LATEST_PUT_PREFIX = "latest-put#"
LATEST_PUT_TTL_SECONDS = 35 * 24 * 3600


def applied(write: Callable[[], Any]) -> bool:
    """Run one conditional DynamoDB write; False when its condition fails, any other error raised."""
    try:
        write()
        return True
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise


def is_billable(record: TaskRecord) -> bool:
    """A done task is charged unless its result is empty (no subject found): a store never pays
    for an empty picture, on any route (docs/api.md, "Pay per use"); nor for a touch-up."""
    return (
        record.state is TaskState.DONE and record.extra.get("found") is not False and not is_touch_up(record)
    )


def is_touch_up(record: TaskRecord) -> bool:
    """A task that makes a kept result again (its ``result_id``, ``alphacut.touchup``): no model
    runs, charged 0, never an unpaid run."""
    return bool(record.options.get("result_id"))


def _unix(iso: str | None) -> int | None:
    if not iso:
        return None
    return int(datetime.fromisoformat(iso).timestamp())


@dataclass
class TaskRecord:
    task_id: str
    owner: str
    options: dict[str, Any]
    state: TaskState = TaskState.QUEUED
    created_at: int = field(default_factory=lambda: int(time.time()))
    input_key: str | None = None
    image_url: str | None = None
    source_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # what the state machine wrote

    @property
    def account(self) -> str:
        """The account that pays for the task (its balance, usage): the submitting key's."""
        return str(self.extra.get("account") or self.owner)

    @property
    def test(self) -> bool:
        """A test key's task: never charged, its result marked."""
        return bool(self.extra.get("test"))

    @property
    def payer(self) -> str:
        """Whose usage and balance the task's settling touches: the account's (a test key's task:
        the account's test count, which has no balance)."""
        return test_payer(self.account) if self.test else self.account

    @property
    def cutout_options(self) -> CutoutOptions:
        """The options the task was submitted with, parsed again (they are stored as sent)."""
        return CutoutOptions.from_mapping(self.options)

    @property
    def processed_at(self) -> int | None:
        return _unix(self.extra.get("processed_at_iso"))

    @property
    def completed_at(self) -> int | None:
        return _unix(self.extra.get("completed_at_iso"))

    @property
    def spent(self) -> TaskSpent | None:
        """What the submission counted on the key's own daily spending (None: nothing)."""
        day, amount = self.extra.get(SPENT_DAY), self.extra.get(SPENT)
        return TaskSpent(self.owner, str(day), int(amount)) if day and amount else None

    @property
    def slot(self) -> TaskSlot | None:
        """The quota slot the submission took (None: none; a credits task)."""
        holder, day = self.extra.get(SLOT_HOLDER), self.extra.get(SLOT_DAY)
        return TaskSlot(str(holder), str(day)) if holder and day else None

    def to_item(self) -> dict[str, Any]:
        item = {
            "task_id": self.task_id,
            "owner": self.owner,
            "state": int(self.state),
            "progress": self.state.progress,
            "created_at": self.created_at,
            "options": json.dumps(self.options, sort_keys=True),
            "expires_at": self.created_at + TASK_TTL_SECONDS,
        }
        for name in ("input_key", "image_url", "source_key"):
            if getattr(self, name):
                item[name] = getattr(self, name)
        return {**self.extra, **item}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> TaskRecord:
        known = {
            "task_id",
            "owner",
            "state",
            "progress",
            "created_at",
            "options",
            "expires_at",
            "input_key",
            "image_url",
            "source_key",
        }
        return cls(
            task_id=item["task_id"],
            owner=item.get("owner", ""),
            options=json.loads(item.get("options", "{}")),
            state=TaskState(int(item["state"])),
            created_at=int(item["created_at"]),
            input_key=item.get("input_key"),
            image_url=item.get("image_url"),
            source_key=item.get("source_key"),
            extra={
                k: (int(v) if hasattr(v, "as_integer_ratio") and not isinstance(v, float | bool) else v)
                for k, v in item.items()
                if k not in known
            },
        )


class TaskTable:
    def __init__(self, table_name: str, dynamodb: Any = None):
        if not table_name:
            raise ValueError("no task table configured (TASKS_TABLE)")
        self.table_name = table_name
        self._dynamodb = dynamodb  # a boto3 DynamoDB resource; default: from the environment

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> TaskTable:
        return cls(settings.require("tasks_table"))

    @cached_property
    def table(self) -> Any:
        return (self._dynamodb or boto3.resource("dynamodb")).Table(self.table_name)

    def create(self, record: TaskRecord) -> bool:
        """Write a new task; False if one with this id exists (a retried submission)."""
        return applied(
            lambda: self.table.put_item(
                Item=record.to_item(), ConditionExpression="attribute_not_exists(task_id)"
            )
        )

    def get(self, task_id: str, owner: str | None = None) -> TaskRecord:
        item = self.table.get_item(Key={"task_id": task_id}, ConsistentRead=True).get("Item")
        if item is None or (owner is not None and item.get("owner") != owner):
            raise NotFound(f"no task {task_id}", field="task_id")  # another key's task: same answer
        if int(item.get("expires_at") or 0) and int(item["expires_at"]) < time.time():
            # DynamoDB deletes an expired item up to days after its TTL: past it, the task is gone
            raise NotFound(
                f"no task {task_id}: tasks are kept {TASK_TTL_SECONDS // 86400} days", field="task_id"
            )
        return TaskRecord.from_item(item)

    def recent(
        self, owner: str, limit: int, after: dict[str, Any] | None = None
    ) -> tuple[list[TaskRecord], dict[str, Any] | None]:
        """The key's tasks, newest first, ``limit`` at most, after the page that ended at ``after``;
        the key the next page starts after (None: no more). Past their TTL they are left out."""
        query: dict[str, Any] = {
            "IndexName": OWNER_INDEX,
            "KeyConditionExpression": f"{LISTED_OWNER} = :owner",
            "ExpressionAttributeValues": {":owner": owner},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if after:
            query["ExclusiveStartKey"] = after
        answer = self.table.query(**query)
        now = time.time()
        records = [
            TaskRecord.from_item(item)
            for item in answer.get("Items", [])
            if not int(item.get("expires_at") or 0) or int(item["expires_at"]) >= now
        ]
        return records, answer.get("LastEvaluatedKey")

    def by_source_key(self, source_key: str) -> TaskRecord:
        items = self.table.query(
            IndexName=SOURCE_KEY_INDEX,
            KeyConditionExpression="source_key = :k",
            ExpressionAttributeValues={":k": source_key},
        ).get("Items", [])
        if not items:
            raise NotFound(f"no task for {source_key}", field="key")
        # the index holds keys only; the newest upload of this key is its task
        return max((self.get(item["task_id"]) for item in items), key=lambda record: record.created_at)

    def fail(
        self,
        task_id: str,
        state: TaskState,
        message: str,
        error_name: str = "TaskFailed",
        only_from: tuple[TaskState, ...] = IN_PROGRESS,
    ) -> bool:
        """End a task outside the state machine (its execution could not start, or ended without
        ending it). Only from ``only_from`` states: a final state is never overwritten. False
        when the task was not in one of them (or does not exist)."""
        names = {f":from{i}": int(s) for i, s in enumerate(only_from)}
        return self._conditional_update(
            task_id,
            "SET #s = :s, progress = :zero, error_name = :n, error_cause = :m, completed_at_iso = :now",
            f"#s IN ({', '.join(names)})",
            {
                ":s": int(state),
                ":zero": 0,
                ":n": error_name,
                ":m": message,
                ":now": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                **names,
            },
        )

    def mark_done(self, task_id: str, execution_id: str, result: dict[str, Any]) -> bool:
        """The task done with ``result`` (the Segment or Compose step's: keys, size, found, check,
        verdict, the result_id it is kept under for a touch-up), only while the execution
        ``execution_id`` holds it in progress, or has made it done already (a retried step writes
        the same again). False: it ended elsewhere."""
        return self._conditional_update(
            task_id,
            "SET #s = :done, progress = :progress, completed_at_iso = :now, image_key = :image, "
            "mask_key = :mask, result_width = :w, result_height = :h, #found = :found, "
            "result_check = :check, result_verdict = :verdict, kept_result_id = :kept",
            "(#s IN (:waiting, :processing) OR #s = :done) AND execution_id = :me",
            {
                ":done": int(TaskState.DONE),
                ":progress": 100,
                ":now": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                ":image": str(result.get("image_key") or ""),
                ":mask": str(result.get("mask_key") or ""),
                ":w": int(result.get("width") or 0),
                ":h": int(result.get("height") or 0),
                ":found": bool(result.get("found", True)),
                ":check": str(result.get("check") or ""),
                ":verdict": str(result.get("verdict") or ""),
                ":kept": str(result.get("result_id") or ""),
                ":me": execution_id,
                ":waiting": int(TaskState.WAITING),
                ":processing": int(TaskState.PROCESSING),
            },
            {"#found": "found"},
        )

    def note_callback_queued(self, task_id: str) -> None:
        """The task's callback is in the callback queue: a retried end step does not queue it twice."""
        self.table.update_item(
            Key={"task_id": task_id},
            UpdateExpression="SET callback_queued = :yes",
            ExpressionAttributeValues={":yes": True},
        )

    def await_model(self, task_id: str, execution_id: str, task_token: str) -> bool:
        """The task waits in the endpoint's queue (state 3) under the execution that holds it,
        with the token that ends its waiting step. False when that execution no longer holds it
        in progress (stopped, or ended elsewhere)."""
        return self._conditional_update(
            task_id,
            "SET #s = :waiting, progress = :progress, task_token = :token",
            "#s IN (:waiting, :processing) AND execution_id = :me",
            {
                ":waiting": int(TaskState.WAITING),
                ":processing": int(TaskState.PROCESSING),
                ":progress": TaskState.WAITING.progress,
                ":token": task_token,
                ":me": execution_id,
            },
        )

    def model_started(self, task_id: str) -> bool:
        """The model took the task from the endpoint's queue (3 -> 4); False if it was not waiting."""
        return self._conditional_update(
            task_id,
            "SET #s = :processing, progress = :progress",
            "#s = :waiting",
            {
                ":waiting": int(TaskState.WAITING),
                ":processing": int(TaskState.PROCESSING),
                ":progress": TaskState.PROCESSING.progress,
            },
        )

    def note_put(self, source_key: str, order: str) -> bool:
        """Record ``order`` (``put_order``) as the newest put of ``source_key``; False when a newer
        put of that key is known already (its notification came first)."""
        return applied(
            lambda: self.table.update_item(
                Key={"task_id": LATEST_PUT_PREFIX + source_key},
                UpdateExpression="SET latest_put = :order, expires_at = :expires",
                ConditionExpression="attribute_not_exists(latest_put) OR latest_put <= :order",
                ExpressionAttributeValues={
                    ":order": order,
                    ":expires": int(time.time()) + LATEST_PUT_TTL_SECONDS,
                },
            )
        )

    def superseded(self, source_key: str, order: str) -> bool:
        """True when a newer put of ``source_key`` than ``order`` has been noted."""
        item = self.table.get_item(Key={"task_id": LATEST_PUT_PREFIX + source_key}, ConsistentRead=True)
        latest = item.get("Item", {}).get("latest_put")
        return latest is not None and str(latest) > order

    def _conditional_update(
        self,
        task_id: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> bool:
        """One conditional write to a task (``#s`` is its state); False when the condition fails."""
        return applied(
            lambda: self.table.update_item(
                Key={"task_id": task_id},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "state", **(names or {})},
                ExpressionAttributeValues=values,
            )
        )
