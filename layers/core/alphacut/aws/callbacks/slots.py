"""A key's callbacks in flight: at most ``limit`` of its tasks may have a callback not yet delivered
(or given up on), so one key whose receiver never answers cannot keep the Notify function's few
slots busy with its retries while other customers' callbacks wait.

A slot is an item per task, ``pk = "callbacks#<key id>"``, ``sk = <task id>``, with an expiry past
anything a task and its callback's retries may take (a slot a killed function never gave back
frees itself then; reads skip expired ones before DynamoDB's TTL deletes them; giving one back
expires it now). Taking one is a
count of the key's live slots (one Query of at most ``limit`` small items) and a put; two
submissions at the same instant may both pass at ``limit - 1``: the limit holds within the key's
concurrent submissions. The task's submission takes it; the callback's delivery, drop, or last try
gives it back.

Usage::

    slots = CallbackSlots("usage-table")
    slots.take("k0123456789ab", task_id)       # TooManyCallbacks (429) at the limit
    slots.give_back("k0123456789ab", task_id)  # delivered, dropped, or tried for the last time
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from alphacut.aws.clients import client
from alphacut.errors import TooManyCallbacks

DEFAULT_LIMIT = 100
# a task may wait 6 h in its queue and run 24,000 s; its callback is then tried for about 6.4 h
# (alphacut.aws.callbacks.queue): a slot outlives all of it
SLOT_SECONDS = 3 * 86400


class CallbackSlots:
    def __init__(self, table_name: str, limit: int = DEFAULT_LIMIT, clock: Callable[[], float] = time.time):
        self.table_name, self.limit, self.clock = table_name, limit, clock

    @property
    def _db(self) -> Any:
        return client("dynamodb")

    def in_flight(self, key_id: str) -> int:
        """The key's live slots (up to ``limit`` counted)."""
        answer = self._db.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            FilterExpression="expires_at > :now",
            ExpressionAttributeValues={
                ":pk": {"S": f"callbacks#{key_id}"},
                ":now": {"N": str(int(self.clock()))},
            },
            Select="COUNT",
            Limit=self.limit + 1,
            ConsistentRead=True,
        )
        return int(answer["Count"])

    def take(self, key_id: str, task_id: str) -> None:
        """A slot for the callback of ``task_id``, or ``TooManyCallbacks``."""
        if self.in_flight(key_id) >= self.limit:
            raise TooManyCallbacks(
                f"this API key has {self.limit} callbacks waiting to be delivered: submit this task "
                "without callback_url and poll it, or once its receiver has taken them",
                field="callback_url",
                limit=self.limit,
            )
        self._db.put_item(
            TableName=self.table_name,
            Item={
                "pk": {"S": f"callbacks#{key_id}"},
                "sk": {"S": task_id},
                "expires_at": {"N": str(int(self.clock()) + SLOT_SECONDS)},
            },
        )

    def give_back(self, key_id: str, task_id: str) -> None:
        """The slot expires now (no delete: the API functions may delete nothing in the usage
        table; the table's TTL removes it)."""
        self._db.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"callbacks#{key_id}"}, "sk": {"S": task_id}},
            UpdateExpression="SET expires_at = :now",
            ExpressionAttributeValues={":now": {"N": str(int(self.clock()))}},
        )
