"""A key's limits, held by the service (API Gateway's usage plans are best-effort and serve at most
10,000 keys): its plan's request rate and its daily quota of delivered results.

- **Rate** (every keyed call, refusals included): API Gateway's own token bucket, exactly, as a
  generic cell rate algorithm: a key's theoretical arrival time ``tat`` (ms) moves on by
  ``1000 / rate`` a call, and a call is let in while ``tat`` is at most ``(burst - 1)`` intervals
  ahead of now; so ``burst`` calls pass at once and ``rate`` a second after. One conditional write
  on ``pk = "rate#<key id>"`` (``SET tat = tat + interval`` for a busy key, ``SET tat = now +
  interval`` for an idle one; a second write when the key changed state since this container saw
  it). Over it: 429 with Retry-After the seconds until a call would pass.
- **Quota** (a quota plan's calls that may deliver): a slot of the day is taken before the model
  runs (``ADD taken 1`` under ``taken < quota``: whatever arrives at once, at most ``quota`` are
  taken), kept when a result is delivered and given back when not, so errors, polls and account
  reads spend nothing. ``pk = "quota#<key id>"``, ``sk = "<UTC day>"``; over it: 429 (remove.bg:
  402) with Retry-After the seconds to 00:00 UTC. A function killed between taking a slot and
  giving it back leaves that slot taken for the rest of the day.
- **Unpaid runs** (a model run that was not charged: no subject found, an answer over Lambda's 6 MB
  or past API Gateway's 29 s): counted per key and day (``ADD runs 1`` on ``pk = "unpaid#<key id>"``,
  ``sk = "<UTC day>"``, one write after such a run, none on any other call). Once the count reaches
  the day's budget the container that wrote it refuses the key's paid routes (429
  ``unpaid_runs_spent``) until 00:00 UTC, and every other container does from its own next unpaid
  run of the key: the budget is overshot by at most one run per warm container.

Usage::

    limits = KeyLimits("usage-table")
    limits.admit("key-id", plan)              # RateLimited (429) over the plan's rate
    left = limits.take_slot("key-id", plan.quota)   # QuotaExceeded (429) when spent; slots left
    limits.give_back_slot("key-id", day)      # nothing was delivered
    limits.taken("key-id")                    # today's slots taken (remain = quota - taken)
    limits.count_unpaid_run("key-id", budget)  # after a model run nobody was charged for
    limits.refuse_if_unpaid_spent("key-id")   # UnpaidRunsSpent (429) once the budget is reached
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alphacut.aws.clients import client
from alphacut.aws.ledger.plans import Plan
from alphacut.aws.transactions import once_marker, transact
from alphacut.errors import QuotaExceeded, RateLimited, TouchUpsSpent, UnpaidRunsSpent

# a quota task's record keeps the slot its submission took (its holder, its UTC day)
SLOT_HOLDER, SLOT_DAY = "slot_holder", "slot_day"

RATE_ITEM_SECONDS = 60  # a key's rate item outlives the moment it stops mattering by this (TTL)
QUOTA_ITEM_SECONDS = 2 * 86400
TOUCH_UP_ITEM_SECONDS = 2 * 86400  # a result's touch-up count outlives its 24 h (TTL deletes late)


def utc_day(at: float | None = None) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() if at is None else at))


def next_utc_midnight(at: float | None = None) -> int:
    return (int(time.time() if at is None else at) // 86400 + 1) * 86400


def bucket(plan: Plan) -> tuple[int, int] | None:
    """The plan's rate as (milliseconds a call, the burst tolerance in ms); None: no rate of its own."""
    if plan.rate_limit is None or plan.rate_limit <= 0:
        return None
    burst = max(1, plan.burst if plan.burst is not None else math.ceil(plan.rate_limit))
    interval = max(1, round(1000 / plan.rate_limit))
    return interval, (burst - 1) * interval


@dataclass(frozen=True)
class RateLeft:
    """What is left of a key's rate after a call: the calls that would pass at once, and the
    seconds until the whole burst is back (none left: until the next call passes, rounded down, so a
    client that waits for it never waits longer than it must)."""

    calls: int
    reset_seconds: int

    @classmethod
    def after(cls, tat: int, now: int, interval: int, tolerance: int) -> RateLeft:
        """From the key's theoretical arrival time (ms) as the call's write left it: a call passes
        while ``tat`` is at most ``tolerance`` ahead of now, and each moves it on by ``interval``."""
        ahead = max(0, tat - now)
        if ahead > tolerance:
            return cls(0, (ahead - tolerance) // 1000)
        return cls((tolerance - ahead) // interval + 1, math.ceil(ahead / 1000))


class KeyLimits:
    def __init__(self, table_name: str, clock: Callable[[], float] = time.time):
        self.table_name, self.clock = table_name, clock
        self._busy: dict[str, int] = {}  # key id -> the last arrival time this container wrote
        self._unpaid_spent: dict[str, tuple[str, int]] = {}  # key id -> (day, budget) it reached

    @property
    def _db(self) -> Any:
        return client("dynamodb")

    def admit(self, key_id: str, plan: Plan) -> RateLeft | None:
        """Let one call of the key in under its plan's rate, or raise RateLimited; what is left of
        the rate after it, from the write's own answer (None: the plan has no rate). One
        conditional write (two when the key's state is not what this container last saw)."""
        shape = bucket(plan)
        if shape is None:
            return None
        interval, tolerance = shape
        now = int(self.clock() * 1000)
        busy = self._busy.get(key_id, 0) > now
        for _ in range(4):  # another container may move the key's state between two tries
            written, tat = self._arrive(key_id, now, interval, tolerance, busy)
            if written:
                self._busy[key_id] = tat or 0
                return RateLeft.after(tat or now, now, interval, tolerance)
            if tat is None or tat <= now:
                busy = False  # idle since: the next arrival starts from now
            elif tat - now > tolerance:
                wait = max(1, math.ceil((tat - tolerance - now) / 1000))
                raise RateLimited(
                    f"over this API key's request rate ({plan.rate_limit:g} a second, bursts of "
                    f"{tolerance // interval + 1}): retry in {wait} second{'s' if wait > 1 else ''} "
                    "(the Retry-After header)",
                    retry_after=wait,
                    limit=plan.rate_limit,
                )
            else:
                busy = True
        raise RateLimited("this API key's calls meet too often: retry", retry_after=1, limit=plan.rate_limit)

    def _arrive(
        self, key_id: str, now: int, interval: int, tolerance: int, busy: bool
    ) -> tuple[bool, int | None]:
        """One try: (True, the new theoretical arrival time) when written, else (False, the stored
        one, None where there is none) for the caller to decide."""
        if busy:  # the key has calls ahead: its arrival time moves on by one interval
            update, condition = "SET tat = tat + :interval", "tat > :now AND tat <= :latest"
        else:  # idle: it starts again from now
            update, condition = "SET tat = :next", "attribute_not_exists(tat) OR tat <= :now"
        expires = (now + tolerance + interval) // 1000 + RATE_ITEM_SECONDS  # after its state matters
        values = {":now": {"N": str(now)}, ":expires": {"N": str(expires)}}
        values.update(
            {":interval": {"N": str(interval)}, ":latest": {"N": str(now + tolerance)}}
            if busy
            else {":next": {"N": str(now + interval)}}
        )
        try:
            answer = self._db.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"rate#{key_id}"}, "sk": {"S": "-"}},
                UpdateExpression=update + ", expires_at = :expires",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._db.exceptions.ConditionalCheckFailedException as refused:
            old = refused.response.get("Item") or {}
            return False, int(old["tat"]["N"]) if "tat" in old else None
        return True, int(answer["Attributes"]["tat"]["N"])

    def take_slot(self, key_id: str, quota: int, at: float | None = None) -> int:
        """Take one of today's ``quota`` slots: how many are left after it, or QuotaExceeded.
        ``at``: the moment whose UTC day it is (read once by a caller that keeps the day: a call
        across 00:00 gives its slot back to the day it took it from)."""
        now = self.clock() if at is None else at
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
            reset = next_utc_midnight(now)
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

    def give_back_task_slot(self, key_id: str, day: str, task_id: str) -> None:
        """The slot a task took on ``day`` and never delivered in: given back once, however often
        the task's ending runs. A marker ``quota#<key>``/``task#<id>`` is put first, then the slot
        given back: two single writes, not a transaction, since a transaction on the day's counter
        would refuse the key's other calls taking a slot meanwhile (``TransactionConflictException``).
        Stopped between the two, or the marker's answer lost, the slot stays taken: a key may get
        fewer results than its quota, never more."""
        try:  # an update that makes the marker: the roles that take slots may update, never put
            self._db.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"quota#{key_id}"}, "sk": {"S": f"task#{task_id}"}},
                UpdateExpression="SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(pk)",
                ExpressionAttributeValues={":expires": {"N": str(int(self.clock()) + QUOTA_ITEM_SECONDS)}},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return  # given back before
        self.give_back_slot(key_id, day)

    def taken(self, key_id: str) -> int:
        """Today's slots taken (delivered results and calls still running)."""
        item = self._db.get_item(
            TableName=self.table_name, Key=self._quota_key(key_id, utc_day(self.clock())), ConsistentRead=True
        ).get("Item")
        return int(item["taken"]["N"]) if item else 0

    def count_touch_up(self, result_id: str, cap: int) -> None:
        """One more touch-up of the result ``result_id``, or ``TouchUpsSpent`` once it had ``cap``
        (0: none). One conditional write on ``touchup#<result id>``, kept as long as the result."""
        expires = int(self.clock()) + TOUCH_UP_ITEM_SECONDS
        try:
            self._db.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"touchup#{result_id}"}, "sk": {"S": "-"}},
                UpdateExpression="ADD touch_ups :one SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(touch_ups) OR touch_ups < :cap",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":cap": {"N": str(cap)},
                    ":expires": {"N": str(expires)},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            raise TouchUpsSpent(
                f"this result was touched up {cap} times, as often as one result may be: cut the photo "
                "out again (a paid call) for a new result to touch up",
                field="result_id",
                limit=cap,
            ) from None

    def count_unpaid_run(self, key_id: str, budget: int, once_for: str = "") -> int | None:
        """One more of today's model runs the key was not charged for: today's count. From
        ``budget`` on (0: no budget), this container refuses the key's paid routes for the day.
        ``once_for``: a task id, counted once however often its ending step is retried; then the
        count is not read back (None): the task functions that count so never read it, and their
        roles may not (a read the EndTask role was refused, every empty task)."""
        now = self.clock()
        day = utc_day(now)
        expires = {"N": str(int(now) + QUOTA_ITEM_SECONDS)}
        count = {
            "TableName": self.table_name,
            "Key": {"pk": {"S": f"unpaid#{key_id}"}, "sk": {"S": day}},
            "UpdateExpression": "ADD runs :one SET expires_at = :expires",
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":expires": expires},
        }
        if once_for:
            marker = once_marker(self.table_name, f"unpaid#{key_id}", f"task#{once_for}", expires)
            transact(self._db, [marker, {"Update": count}])  # counted before: nothing more
            return None
        answer = self._db.update_item(**count, ReturnValues="UPDATED_NEW")
        runs = int(answer["Attributes"]["runs"]["N"])
        if budget and runs >= budget:
            self._unpaid_spent[key_id] = (day, budget)
        return runs

    def unpaid_runs(self, key_id: str) -> int:
        """Today's unpaid model runs of the key, as written by every function (one item read)."""
        item = self._db.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"unpaid#{key_id}"}, "sk": {"S": utc_day(self.clock())}},
            ConsistentRead=True,
        ).get("Item")
        return int(item["runs"]["N"]) if item else 0

    def refuse_if_unpaid_spent(self, key_id: str, budget: int = 0) -> None:
        """``UnpaidRunsSpent`` while this container saw the key's unpaid runs reach today's budget
        (no request: what this container learnt from its own writes). With ``budget``, the count
        is read as well (a task submission: its runs happen in other functions, whose counts this
        container never sees; one item read)."""
        if budget and key_id not in self._unpaid_spent and self.unpaid_runs(key_id) >= budget:
            self._unpaid_spent[key_id] = (utc_day(self.clock()), budget)
        spent = self._unpaid_spent.get(key_id)
        now = self.clock()
        if spent is None or spent[0] != utc_day(now):
            return
        reset = next_utc_midnight(now)
        raise UnpaidRunsSpent(
            f"this API key had {spent[1]} model runs today that could not be charged (no subject found, "
            "an answer too large or too late to deliver); its image routes reopen at 00:00 UTC",
            retry_after=reset - int(now),
            limit=spent[1],
        )

    @staticmethod
    def _quota_key(key_id: str, day: str) -> dict[str, Any]:
        return {"pk": {"S": f"quota#{key_id}"}, "sk": {"S": day}}
