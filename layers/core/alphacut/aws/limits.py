"""A key's limits, held by the service (API Gateway's usage plans are best-effort and serve at most
10,000 keys): its plan's request rate and its daily quota of delivered results.

- **Rate** (every keyed call, refusals included): a fixed window of ``ceil(burst / rate)`` seconds
  lets ``burst`` calls in, so a burst passes at once and the rate holds over any two windows
  (at most ``2 x burst`` in the worst second across a window's edge). One conditional ``ADD`` on
  ``pk = "rate#<key id>"``, ``sk = "<window start>"`` (TTL a minute on); over it: 429 with
  Retry-After the seconds to the next window.
- **Quota** (a quota plan's calls that may deliver): a slot of the day is taken before the model
  runs (``ADD taken 1`` under ``taken < quota``: whatever arrives at once, at most ``quota`` are
  taken), kept when a result is delivered and given back when not, so errors, polls and account
  reads spend nothing. ``pk = "quota#<key id>"``, ``sk = "<UTC day>"``; over it: 429 (remove.bg:
  402) with Retry-After the seconds to 00:00 UTC. A function killed between taking a slot and
  giving it back leaves that slot taken for the rest of the day.

Usage::

    limits = KeyLimits("usage-table")
    limits.admit("key-id", plan)              # RateLimited (429) over the plan's rate
    left = limits.take_slot("key-id", plan.quota)   # QuotaExceeded (429) when spent; slots left
    limits.give_back_slot("key-id", day)      # nothing was delivered
    limits.taken("key-id")                    # today's slots taken (remain = quota - taken)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from alphacut.aws.clients import client
from alphacut.aws.plans import Plan
from alphacut.errors import QuotaExceeded, RateLimited

RATE_ITEM_SECONDS = 60  # a window's item outlives it by this much (TTL)
QUOTA_ITEM_SECONDS = 2 * 86400


def utc_day(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


def window(plan: Plan) -> tuple[int, int] | None:
    """The plan's rate as (window seconds, calls let in a window); None: no rate of its own."""
    if plan.rate_limit is None or plan.rate_limit <= 0:
        return None
    burst = max(1, plan.burst if plan.burst is not None else math.ceil(plan.rate_limit))
    return max(1, math.ceil(burst / plan.rate_limit)), burst


class KeyLimits:
    def __init__(self, table_name: str, clock: Callable[[], float] = time.time):
        self.table_name, self.clock = table_name, clock

    @property
    def _db(self) -> Any:
        return client("dynamodb")

    def admit(self, key_id: str, plan: Plan) -> None:
        """Let one call of the key in under its plan's rate, or raise RateLimited."""
        shape = window(plan)
        if shape is None:
            return
        seconds, burst = shape
        now = self.clock()
        start = int(now) // seconds * seconds
        try:
            self._db.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"rate#{key_id}"}, "sk": {"S": str(start)}},
                UpdateExpression="ADD calls :one SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(calls) OR calls < :burst",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":burst": {"N": str(burst)},
                    ":expires": {"N": str(start + seconds + RATE_ITEM_SECONDS)},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            raise RateLimited(
                f"over this API key's request rate ({plan.rate_limit:g} a second, bursts of {burst}): "
                "retry after Retry-After seconds",
                retry_after=math.ceil(start + seconds - now),
                limit=plan.rate_limit,
            ) from None

    def take_slot(self, key_id: str, quota: int) -> int:
        """Take one of today's ``quota`` slots: how many are left after it, or QuotaExceeded."""
        now = self.clock()
        try:
            answer = self._db.update_item(
                TableName=self.table_name,
                Key=self._quota_key(key_id, utc_day(now)),
                UpdateExpression="ADD taken :one SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(taken) OR taken < :quota",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":quota": {"N": str(quota)},
                    ":expires": {"N": str(int(now) + QUOTA_ITEM_SECONDS)},
                },
                ReturnValues="UPDATED_NEW",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            reset = (int(now) // 86400 + 1) * 86400
            resets_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset))
            raise QuotaExceeded(
                f"this API key's daily quota of {quota} results is spent; "
                f"it resets at {resets_at} (00:00 UTC)",
                retry_after=reset - int(now),
                limit=quota,
                resets_at=resets_at,
            ) from None
        return max(quota - int(answer["Attributes"]["taken"]["N"]), 0)

    def give_back_slot(self, key_id: str, day: str) -> None:
        """A slot taken on ``day`` whose call delivered nothing."""
        try:
            self._db.update_item(
                TableName=self.table_name,
                Key=self._quota_key(key_id, day),
                UpdateExpression="ADD taken :minus",
                ConditionExpression="taken > :zero",
                ExpressionAttributeValues={":minus": {"N": "-1"}, ":zero": {"N": "0"}},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            pass

    def taken(self, key_id: str) -> int:
        """Today's slots taken (delivered results and calls still running)."""
        item = self._db.get_item(
            TableName=self.table_name, Key=self._quota_key(key_id, utc_day(self.clock())), ConsistentRead=True
        ).get("Item")
        return int(item["taken"]["N"]) if item else 0

    @staticmethod
    def _quota_key(key_id: str, day: str) -> dict[str, Any]:
        return {"pk": {"S": f"quota#{key_id}"}, "sk": {"S": day}}
