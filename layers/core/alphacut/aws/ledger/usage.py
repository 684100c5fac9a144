"""Metering (DynamoDB): calls made and calls charged, per API key, per UTC day, per route; task
charges, exactly once. A key's limits are ``alphacut.aws.ledger.limits`` (``meter.limits``).

Items (one table, ``USAGE_TABLE``):

- ``pk = "usage#<key id>"``, ``sk = "<YYYY-MM-DD>#<route>#<shard>"``: ``calls``, ``charged``, ``credits``
- ``pk = "usage#<key id>"``, ``sk = "<YYYY-MM-DD>#*#<shard>"``: the day's totals (what ``remain`` counts)

Each counter is ``COUNTER_SHARDS`` items: a charge writes one shard, chosen at random (another
after a conflict), so a key's concurrent calls seldom meet in a transaction; readers add the
shards up (one query: the shards of a day are neighbours). Counters written before shards
(``<day>#<route>``) read as one more shard.
- ``pk = "charge#<task id>"``: a task charged once (a retried state machine step charges nothing),
  written in one transaction with the counters it adds to
- ``pk = "call#<request id>"``: a call counted (a second application of the same call counts
  nothing), written in one transaction with the counters it adds to
- ``pk = "unbilled#<marker>"``: a call (``call#<id>``) or task (``charge#<id>``, ``<task id>``)
  delivered and not paid: written in the charge transaction itself when the balance could not
  cover it (counted in the ``UnbilledCalls`` metric, with an alarm), or by the finalizer for a task
  whose charge failed after every retry (``UnbilledTasks``)
- ``pk = "idem#<key id>"``: idempotency records (``alphacut.aws.ledger.idempotency``)
- ``pk = "key#..."``, ``"apikey#..."``, ``"plans"``: the keys and plans (``alphacut.aws.keys.store``,
  ``alphacut.aws.ledger.plans``); ``"rate#..."``, ``"quota#..."``: their limits
  (``alphacut.aws.ledger.limits``)

Every count is an atomic ``ADD``: concurrent calls never lose an update.

Usage::

    meter = UsageMeter.from_settings(ServiceSettings.from_env())
    meter.record(MeteredCall("key-id", "/v1/cutout", charged=True, call_id="request-id"))
    meter.report("key-id", "2026-11-01", "2026-11-22")
    meter.charge_task("key-id", "task-id")   # True once; False for every later attempt
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from alphacut.aws.clients import client
from alphacut.aws.ledger.credits import CreditLedger
from alphacut.aws.ledger.key_spend import KeySpend
from alphacut.aws.ledger.limits import KeyLimits, utc_day  # one UTC day for quotas and counters
from alphacut.aws.transactions import CONDITION_FAILED, transact
from alphacut.errors import InvalidOption
from alphacut.pricing import credits
from alphacut.settings import ServiceSettings

TOTAL_ROUTE = "*"
COUNTER_SHARDS = 32  # per counter; at 50 calls/s of one key, ~1.6 a second meet on a shard
CHARGE_MARKER_TTL_SECONDS = 30 * 86400
# a call's marker outlasts the metering queue's retention (4 days), so a late replay counts nothing
CALL_MARKER_TTL_SECONDS = 14 * 86400
MAX_REPORT_DAYS = 366
UNPAID = "delivered; the balance did not cover it"


logger = Logger(child=True)
metrics = Metrics()  # one set per process: the function's log_metrics flushes it


def parse_day(value: str | None, field: str, default: str) -> str:
    if value is None or not value.strip():
        return default
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise InvalidOption(f"must be a date as YYYY-MM-DD, not {value!r}", field=field) from None


@dataclass(frozen=True)
class TaskSpent:
    """What a task's submission counted on its key's own daily spending."""

    key_id: str
    day: str
    amount: int


@dataclass(frozen=True)
class TaskSlot:
    """The quota slot a task's submission took: whose (a quota plan's account, a test key's
    account's test results) and on which UTC day."""

    holder: str
    day: str


class UsageMeter:
    def __init__(self, table_name: str, queue_url: str = "", clock: Callable[[], float] = time.time):
        self.table_name, self.queue_url, self.clock = table_name, queue_url, clock
        self.credits = CreditLedger(table_name, clock)
        self.limits = KeyLimits(table_name, clock)
        self.key_spend = KeySpend(table_name, clock)

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> UsageMeter | None:
        """The meter on the usage table (None where the function has none: nothing metered)."""
        return cls(settings.usage_table, settings.metering_queue_url) if settings.usage_table else None

    @property
    def _db(self) -> Any:
        return client("dynamodb")

    # ---- counting ------------------------------------------------------------------------------
    def record(self, call: MeteredCall) -> bool:
        """Count one call (and its charge): the route's counter, the day's totals and a marker
        for the call in one transaction, so the counters never disagree and a call applied
        twice (a retry, the metering queue) counts once. False when it was counted already.
        A credit-based call's hold is committed in the same transaction (``alphacut.aws.ledger.credits``)."""
        return self._add_once(
            f"call#{call.call_id}",
            CALL_MARKER_TTL_SECONDS,
            {},
            Counts(
                call.key_id, call.day, call.route, 1, int(call.charged), call.credits if call.charged else 0
            ),
            call.hold,
            call.hold_finished,
        )

    def _add_once(
        self,
        marker_pk: str,
        marker_ttl: int,
        marker_fields: dict[str, Any],
        counts: Counts,
        hold: str = "",
        hold_finished: bool = False,
    ) -> bool:
        """The route's and the day's counters with a marker, in one transaction: a failed attempt
        leaves nothing behind, a repeated one (the marker exists) is refused whole: False.
        Credits are paid by the hold (committed) or, where it was released meanwhile or there is
        none, from the balance if it covers them; a delivery the balance cannot pay is counted
        without credits and kept as unbilled for an operator."""
        marker = {
            "Put": {
                "TableName": self.table_name,
                "Item": {
                    "pk": {"S": marker_pk},
                    "sk": {"S": "-"},
                    **marker_fields,
                    "expires_at": {"N": str(int(self.clock()) + marker_ttl)},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        ways = []
        if counts.credits and hold:
            ways.append([self.credits.commit_item(counts.key_id, hold, counts.credits, hold_finished)])
        if counts.credits:
            ways.append([self.credits.take_item(counts.key_id, counts.credits)])
        # the last way: counted without credits, and the unbilled record in the same transaction (a
        # record written after it could be lost to a fault between the two)
        ways.append([self._unbilled_item(counts.key_id, marker_pk, UNPAID)] if counts.credits else [])
        for way, payment in enumerate(ways):
            paid = counts if payment and way < len(ways) - 1 else replace(counts, credits=0)

            def items(paid: Counts = paid, payment: list[dict[str, Any]] = payment) -> list[dict[str, Any]]:
                shard = random.randrange(COUNTER_SHARDS)  # another one at each attempt
                return [
                    marker,
                    self._counter_update(paid, counter_key(paid.day, paid.route, shard)),
                    self._counter_update(paid, counter_key(paid.day, TOTAL_ROUTE, shard)),
                    *payment,
                ]

            refused = transact(self._db, items)
            if refused is None:
                if counts.credits and way == len(ways) - 1:
                    count_unbilled(marker_pk)
                return True
            if refused[0] == CONDITION_FAILED:
                return False  # applied already
            logger.warning("credits not paid this way", extra={"marker": marker_pk, "way": way})
        raise AssertionError("the last way has no condition but the marker's")

    def _counter_update(self, counts: Counts, sort_key: str) -> dict[str, Any]:
        values = {":calls": {"N": str(counts.calls)}, ":charged": {"N": str(counts.charged)}}
        expression = "ADD calls :calls, charged :charged"
        if counts.credits:
            values[":credits"] = {"N": str(counts.credits)}
            expression += ", credits :credits"
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": {"pk": {"S": f"usage#{counts.key_id}"}, "sk": {"S": sort_key}},
                "UpdateExpression": expression,
                "ExpressionAttributeValues": values,
            }
        }

    def count(self, call: MeteredCall) -> None:
        """Count a call that was answered, whatever DynamoDB does: a failed write goes to the
        metering queue, whose consumer applies it once (``record``). Never raises: an answer
        delivered stays delivered."""
        try:
            self.record(call)
            return
        except Exception as error:  # noqa: BLE001 - the answer goes out; the count is deferred
            logger.warning(
                "metering deferred to the queue", extra={"call": call.to_json(), "error": str(error)}
            )
        try:
            client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=call.to_json())
        except Exception:  # last resort: the log line holds the call, to apply by hand
            logger.exception("metering lost: apply this call by hand", extra={"call": call.to_json()})
            if call.charged:
                count_unbilled(f"call#{call.call_id}")

    def charge_task(
        self, key_id: str, task_id: str, route: str = "/v1/tasks", day: str | None = None, price: int = 0
    ) -> bool:
        """Charge a finished task once. The marker and the counters are one transaction: a failed
        attempt leaves nothing behind (a retry charges), a repeated one is refused whole (no
        second charge). A credit-based key pays with the hold made at submission; a task that has
        none (an upload) pays ``price`` from the balance."""
        hold = self.credits.hold(key_id, task_hold(task_id))
        has_account = price and self.credits.balance(key_id) is not None
        amount = hold.amount if hold else (price if has_account else 0)
        return self._add_once(
            f"charge#{task_id}",
            CHARGE_MARKER_TTL_SECONDS,
            {"owner": {"S": key_id}},
            Counts(key_id, day or utc_day(self.clock()), route, 0, 1, amount),
            task_hold(task_id) if hold else "",
        )

    def settle_task(
        self,
        key_id: str,
        task_id: str,
        billable: bool,
        price: int = 0,
        spent: TaskSpent | None = None,
        slot: TaskSlot | None = None,
    ) -> bool:
        """A done task: charged once if billable (``charge_task``), else (an empty picture) its
        reserved credits or its quota slot come back. True when this call charged it."""
        if billable:
            return self.charge_task(key_id, task_id, price=price)
        self.release_task(key_id, task_id, spent, slot)
        return False

    def release_task(
        self, key_id: str, task_id: str, spent: TaskSpent | None = None, slot: TaskSlot | None = None
    ) -> bool:
        """A task that ended without a charge: the credits it reserved come back (False: none), and
        what it counted on its key's own spending with them (``spent``), once: only the ending that
        released the hold gives it back; a quota task's slot (``slot``) once too (its marker)."""
        released = self.credits.release(key_id, task_hold(task_id))
        if released and spent is not None:
            self.key_spend.give_back(spent.key_id, spent.day, spent.amount)
        if slot is not None:
            self.limits.give_back_task_slot(slot.holder, slot.day, task_id)
        return released

    def is_charged(self, task_id: str) -> bool:
        return "Item" in self._db.get_item(
            TableName=self.table_name,
            ConsistentRead=True,
            Key={"pk": {"S": f"charge#{task_id}"}, "sk": {"S": "-"}},
        )

    def record_unbilled(self, key_id: str, task_id: str, reason: str) -> None:
        """Keep a delivered task whose charge could not be made, for an operator to bill."""
        self._db.put_item(**self._unbilled_item(key_id, task_id, reason)["Put"])

    def _unbilled_item(self, key_id: str, marker: str, reason: str) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": {
                    "pk": {"S": f"unbilled#{marker}"},
                    "sk": {"S": "-"},
                    "owner": {"S": key_id},
                    "reason": {"S": reason[:1000]},
                    "recorded_at": {"N": str(int(self.clock()))},
                },
            }
        }

    def report(self, key_id: str, first: str, last: str, with_credits: bool = False) -> dict[str, Any]:
        """Daily totals per route between two UTC days (both included); ``with_credits`` (a
        credit-based key): the credits charged too, per route, day and in the total."""
        if first > last:
            raise InvalidOption(f"must not be after to ({last})", field="from")
        if (date.fromisoformat(last) - date.fromisoformat(first)).days >= MAX_REPORT_DAYS:
            raise InvalidOption(
                f"the range may cover at most {MAX_REPORT_DAYS} days", field="from", limit=MAX_REPORT_DAYS
            )
        names = ("calls", "charged", "credits") if with_credits else ("calls", "charged")
        days: dict[str, dict[str, Any]] = {}
        pages = self._db.get_paginator("query").paginate(
            TableName=self.table_name,
            ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
            ExpressionAttributeValues={
                ":pk": {"S": f"usage#{key_id}"},
                ":first": {"S": f"{first}#"},
                ":last": {"S": f"{last}#~"},
            },
        )
        for page in pages:
            for item in page.get("Items", []):
                day, route = parse_counter_key(item["sk"]["S"])
                counts = {name: int(item.get(name, {}).get("N", 0)) for name in names}
                entry = days.setdefault(day, {"date": day, **dict.fromkeys(names, 0), "routes": {}})
                into = (
                    entry
                    if route == TOTAL_ROUTE
                    else entry["routes"].setdefault(route, dict.fromkeys(names, 0))
                )
                for name, value in counts.items():
                    into[name] += value
        listed = [days[d] for d in sorted(days)]
        total = {name: sum(d[name] for d in listed) for name in names}
        if with_credits:  # kept in millicredits above (exact sums), said in credits
            total["credits"] = credits(total["credits"])
            for entry in listed:
                entry["credits"] = credits(entry["credits"])
                for counts in entry["routes"].values():
                    counts["credits"] = credits(counts["credits"])
        return {"from": first, "to": last, "days": listed, "total": total}


def count_unbilled(marker: str) -> None:
    """A delivered call or task that was not paid: the ``UnbilledCalls`` metric (its alarm sends an
    operator to the ``unbilled#`` items, or to the log line where even those could not be written)."""
    metrics.add_metric(name="UnbilledCalls", unit=MetricUnit.Count, value=1)
    logger.warning("delivered and not paid", extra={"marker": marker})


def counter_key(day: str, route: str, shard: int) -> str:
    return f"{day}#{route}#{shard:02d}"


def parse_counter_key(sort_key: str) -> tuple[str, str]:
    """A counter's day and route, from a sharded key or one written before shards."""
    day, _, rest = sort_key.partition("#")
    route, _, shard = rest.rpartition("#")
    return (day, route) if route and shard.isdigit() else (day, rest)


def task_hold(task_id: str) -> str:
    """The id of a task's credit hold (made at submission, committed by its charge)."""
    return f"task#{task_id}"


@dataclass(frozen=True)
class Counts:
    """What one charge transaction adds: to whom, which day and route, and how much."""

    key_id: str
    day: str
    route: str
    calls: int
    charged: int
    credits: int = 0  # millicredits


@dataclass(frozen=True)
class MeteredCall:
    """One call to count: who, which route, which UTC day, charged or not, and its request id
    (what makes applying it twice count once); for a credit-based key, the credits it costs and
    the hold that reserved them."""

    key_id: str
    route: str
    charged: bool
    call_id: str
    day: str = field(default_factory=utc_day)
    credits: int = 0  # millicredits
    hold: str = ""
    hold_finished: bool = False  # the hold's reservation is known finished (its entry removed)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> MeteredCall:
        data = json.loads(text)
        return cls(
            str(data["key_id"]),
            str(data["route"]),
            bool(data["charged"]),
            str(data["call_id"]),
            str(data["day"]),
            int(data.get("credits", 0)),
            str(data.get("hold", "")),
            bool(data.get("hold_finished", False)),
        )


def default_range(query: dict[str, str]) -> tuple[str, str]:
    """``from``/``to`` query parameters, defaulting to the last 30 days up to today (UTC)."""
    today = utc_day()
    last = parse_day(query.get("to"), "to", today)
    first = parse_day(query.get("from"), "from", (date.fromisoformat(last) - timedelta(days=29)).isoformat())
    return first, last
