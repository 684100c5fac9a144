"""Metering (DynamoDB): calls made and calls charged, per API key, per UTC day, per route; the
key's daily quota from its API Gateway usage plan; idempotency records.

Items (one table, ``USAGE_TABLE``):

- ``pk = "usage#<key id>"``, ``sk = "<YYYY-MM-DD>#<route>"``: ``calls``, ``charged``
- ``pk = "usage#<key id>"``, ``sk = "<YYYY-MM-DD>#*"``: the day's totals (what ``remain`` counts)
- ``pk = "idem#<key id>"``, ``sk = <Idempotency-Key>``: a claimed or finished request (TTL 24 h)
- ``pk = "charge#<task id>"``: a task charged once (a retried state machine step charges nothing)

Every count is an atomic ``ADD``: concurrent calls never lose an update.

Usage::

    meter = UsageMeter.from_env()
    calls_today = meter.record("key-id", "/v1/cutout", charged=True)
    meter.daily_quota("key-id")          # from the key's usage plan (cached), None = unlimited
    meter.report("key-id", "2026-11-01", "2026-11-22")
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from botocore.exceptions import ClientError

from alphacut.aws.clients import client
from alphacut.errors import InvalidOption

TOTAL_ROUTE = "*"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
PLAN_CACHE_SECONDS = 60
MAX_REPORT_DAYS = 366


def utc_day(at: float | None = None) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() if at is None else at))


def next_utc_midnight(at: float | None = None) -> int:
    return (int(time.time() if at is None else at) // 86400 + 1) * 86400


def parse_day(value: str | None, field: str, default: str) -> str:
    if value is None or not value.strip():
        return default
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise InvalidOption(f"must be a date as YYYY-MM-DD, not {value!r}", field=field) from None


@dataclass
class Claim:
    """What ``claim_idempotency`` found: ``new`` (go ahead), or an earlier request's record."""

    new: bool
    state: str = ""                  # in_progress | done
    fingerprint: str = ""
    response: dict[str, Any] | None = None


class UsageMeter:
    def __init__(self, table_name: str):
        self.table_name = table_name
        self._plans: dict[str, tuple[float, int | None]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> UsageMeter | None:
        name = os.environ.get("USAGE_TABLE", "")
        return cls(name) if name else None

    @property
    def _db(self):
        return client("dynamodb")

    # ---- counting ------------------------------------------------------------------------------
    def _add(self, key_id: str, sort_key: str, calls: int, charged: int) -> dict[str, Any]:
        answer = self._db.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"usage#{key_id}"}, "sk": {"S": sort_key}},
            UpdateExpression="ADD calls :calls, charged :charged",
            ExpressionAttributeValues={":calls": {"N": str(calls)}, ":charged": {"N": str(charged)}},
            ReturnValues="UPDATED_NEW")
        return answer.get("Attributes", {})

    def record(self, key_id: str, route: str, charged: bool, day: str | None = None) -> int:
        """Count one call (and its charge); returns the key's calls today, this one included."""
        day = day or utc_day()
        self._add(key_id, f"{day}#{route}", 1, int(charged))
        totals = self._add(key_id, f"{day}#{TOTAL_ROUTE}", 1, int(charged))
        return int(totals["calls"]["N"])

    def charge_task(self, key_id: str, task_id: str, route: str = "/v1/tasks", day: str | None = None) -> bool:
        """Charge a finished task once: a marker item makes a second attempt a no-op."""
        day = day or utc_day()
        try:
            self._db.put_item(TableName=self.table_name,
                              Item={"pk": {"S": f"charge#{task_id}"}, "sk": {"S": "-"},
                                    "expires_at": {"N": str(int(time.time()) + 30 * 86400)}},
                              ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        self._add(key_id, f"{day}#{route}", 0, 1)
        self._add(key_id, f"{day}#{TOTAL_ROUTE}", 0, 1)
        return True

    def calls_today(self, key_id: str) -> int:
        item = self._db.get_item(TableName=self.table_name,
                                 Key={"pk": {"S": f"usage#{key_id}"}, "sk": {"S": f"{utc_day()}#{TOTAL_ROUTE}"}},
                                 ConsistentRead=True).get("Item")
        return int(item["calls"]["N"]) if item else 0

    def report(self, key_id: str, first: str, last: str) -> dict[str, Any]:
        """Daily totals per route between two UTC days (both included)."""
        if first > last:
            raise InvalidOption(f"must not be after to ({last})", field="from")
        if (date.fromisoformat(last) - date.fromisoformat(first)).days >= MAX_REPORT_DAYS:
            raise InvalidOption(f"the range may cover at most {MAX_REPORT_DAYS} days", field="from",
                                limit=MAX_REPORT_DAYS)
        days: dict[str, dict[str, Any]] = {}
        pages = self._db.get_paginator("query").paginate(
            TableName=self.table_name, ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
            ExpressionAttributeValues={":pk": {"S": f"usage#{key_id}"}, ":first": {"S": f"{first}#"},
                                       ":last": {"S": f"{last}#~"}})
        for page in pages:
            for item in page.get("Items", []):
                day, _, route = item["sk"]["S"].partition("#")
                counts = {"calls": int(item.get("calls", {}).get("N", 0)),
                          "charged": int(item.get("charged", {}).get("N", 0))}
                entry = days.setdefault(day, {"date": day, "calls": 0, "charged": 0, "routes": {}})
                if route == TOTAL_ROUTE:
                    entry.update(counts)
                else:
                    entry["routes"][route] = counts
        listed = [days[d] for d in sorted(days)]
        return {"from": first, "to": last, "days": listed,
                "total": {"calls": sum(d["calls"] for d in listed), "charged": sum(d["charged"] for d in listed)}}

    # ---- the key's plan --------------------------------------------------------------------------
    def daily_quota(self, key_id: str) -> int | None:
        """The daily quota of the key's usage plan (cached a minute; None: no quota or unknown)."""
        now = time.monotonic()
        with self._lock:
            cached = self._plans.get(key_id)
        if cached and now - cached[0] < PLAN_CACHE_SECONDS:
            return cached[1]
        quota = None
        try:
            plans = client("apigateway").get_usage_plans(keyId=key_id).get("items", [])
        except ClientError:
            plans = []
        for plan in plans:
            limit = (plan.get("quota") or {})
            if limit.get("limit") and limit.get("period", "DAY") == "DAY":
                quota = int(limit["limit"])
        with self._lock:
            self._plans[key_id] = (now, quota)
        return quota

    # ---- idempotency -----------------------------------------------------------------------------
    def claim_idempotency(self, key_id: str, idempotency_key: str, fingerprint: str) -> Claim:
        """Claim a request for this key, or return what an earlier one with the same key left."""
        now = int(time.time())
        item = {"pk": {"S": f"idem#{key_id}"}, "sk": {"S": idempotency_key}, "state": {"S": "in_progress"},
                "fingerprint": {"S": fingerprint}, "expires_at": {"N": str(now + IDEMPOTENCY_TTL_SECONDS)}}
        try:
            self._db.put_item(TableName=self.table_name, Item=item,
                              ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                              ExpressionAttributeValues={":now": {"N": str(now)}})
            return Claim(new=True)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        found = self._db.get_item(TableName=self.table_name, ConsistentRead=True,
                                  Key={"pk": {"S": f"idem#{key_id}"}, "sk": {"S": idempotency_key}}).get("Item", {})
        response = None
        if "response_key" in found:
            response = {"key": found["response_key"]["S"], "status": int(found["status"]["N"])}
        return Claim(new=False, state=found.get("state", {}).get("S", "in_progress"),
                     fingerprint=found.get("fingerprint", {}).get("S", ""), response=response)

    def finish_idempotency(self, key_id: str, idempotency_key: str, status: int, response_key: str) -> None:
        self._db.update_item(TableName=self.table_name,
                             Key={"pk": {"S": f"idem#{key_id}"}, "sk": {"S": idempotency_key}},
                             UpdateExpression="SET #state = :done, #status = :status, response_key = :key",
                             ExpressionAttributeNames={"#state": "state", "#status": "status"},
                             ExpressionAttributeValues={":done": {"S": "done"}, ":status": {"N": str(status)},
                                                        ":key": {"S": response_key}})

    def release_idempotency(self, key_id: str, idempotency_key: str) -> None:
        """Forget a claim whose request failed on our side, so that a retry is processed."""
        self._db.delete_item(TableName=self.table_name,
                             Key={"pk": {"S": f"idem#{key_id}"}, "sk": {"S": idempotency_key}})


def default_range(query: dict[str, str]) -> tuple[str, str]:
    """``from``/``to`` query parameters, defaulting to the last 30 days up to today (UTC)."""
    today = utc_day()
    last = parse_day(query.get("to"), "to", today)
    first = parse_day(query.get("from"), "from", (date.fromisoformat(last) - timedelta(days=29)).isoformat())
    return first, last
