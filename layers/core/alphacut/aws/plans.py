"""Usage plans (API Gateway) and which key is on which, for the request path without API
Gateway's management API.

That API allows 10 requests a second per account and region (bursts of 40, not raisable),
shared by every function, deploy and console of the account: a call must never spend it. So the
key's plan is an item of the usage table (``pk = "plan#<key id>"``), written where plans change
(``alphacut keys``, ``alphacut.aws.keys``) and brought in line by the scheduled sweep
(``sync_plans``: this stack's plans and their keys, 1 + one request per page of keys, whatever
the traffic). A call reads one item (cached per container), so N containers starting at once
make no management request at all.

Usage::

    directory = PlanDirectory("usage-table")
    directory.put("key-id", Plan("id1", "credits", None, 10.0, 20, credit_based=True, model="u2netp"))
    directory.get("key-id")                   # Plan(...) or None: on no plan of this stack
    sync_plans(client("apigateway"), "alphacut", directory)   # -> keys written
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from alphacut.aws.clients import client

CREDIT_BILLING = "credits"  # a usage plan's ``billing`` tag that makes it credit-based


@dataclass(frozen=True)
class Plan:
    id: str
    name: str  # without the stack prefix
    quota: int | None  # calls per UTC day
    rate_limit: float | None  # requests per second
    burst: int | None = None
    credit_based: bool = False  # the plan's ``billing`` tag is ``credits``: calls cost credits
    model: str | None = None  # its ``model`` tag: the model its calls run when they name none

    @classmethod
    def from_gateway(cls, item: dict[str, Any], name: str) -> Plan:
        """A plan as API Gateway's ``GetUsagePlans`` describes it."""
        limit, throttle = item.get("quota") or {}, item.get("throttle") or {}
        daily = int(limit["limit"]) if limit.get("limit") and limit.get("period", "DAY") == "DAY" else None
        rate, burst = throttle.get("rateLimit"), throttle.get("burstLimit")
        return cls(
            item["id"],
            name,
            daily,
            float(rate) if rate is not None else None,
            int(burst) if burst is not None else None,
            credit_plan(item),
            (item.get("tags") or {}).get("model") or None,
        )


def credit_plan(item: dict[str, Any]) -> bool:
    """Whether a usage plan (as API Gateway describes it) is credit-based: its ``billing`` tag."""
    return (item.get("tags") or {}).get("billing") == CREDIT_BILLING


def stack_plans(gateway: Any, stack: str) -> dict[str, Plan]:
    """This stack's plans (named ``<stack>-<plan>``), by their short name: one request a page."""
    prefix = f"{stack}-"
    return {
        item["name"][len(prefix) :]: Plan.from_gateway(item, item["name"][len(prefix) :])
        for page in gateway.get_paginator("get_usage_plans").paginate()
        for item in page.get("items", [])
        if item.get("name", "").startswith(prefix)
    }


def plan_keys(gateway: Any, plan: Plan) -> list[str]:
    """The ids of the keys on ``plan``: one request a page."""
    pages = gateway.get_paginator("get_usage_plan_keys").paginate(usagePlanId=plan.id)
    return [item["id"] for page in pages for item in page.get("items", [])]


class PlanDirectory:
    """The key -> plan items of the usage table."""

    def __init__(self, table_name: str):
        self.table_name = table_name

    @property
    def _db(self) -> Any:
        return client("dynamodb")

    @staticmethod
    def _key(key_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"plan#{key_id}"}, "sk": {"S": "-"}}

    def get(self, key_id: str) -> Plan | None:
        """The key's plan (None: on no plan of this stack, or not synced yet). One item read."""
        item = self._db.get_item(TableName=self.table_name, Key=self._key(key_id)).get("Item")
        return _plan(item) if item else None

    def put(self, key_id: str, plan: Plan) -> None:
        self._db.put_item(TableName=self.table_name, Item={**self._key(key_id), **_attributes(plan)})

    def remove(self, key_id: str) -> None:
        self._db.delete_item(TableName=self.table_name, Key=self._key(key_id))

    def written(self, key_ids: list[str]) -> dict[str, Plan]:
        """The plans the table holds for these keys (batched reads, 100 keys a request)."""
        found: dict[str, Plan] = {}
        for start in range(0, len(key_ids), 100):
            request = {self.table_name: {"Keys": [self._key(k) for k in key_ids[start : start + 100]]}}
            while request:
                answer = self._db.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table_name, []):
                    found[item["pk"]["S"].removeprefix("plan#")] = _plan(item)
                request = answer.get("UnprocessedKeys") or {}
        return found


def sync_plans(gateway: Any, stack: str, directory: PlanDirectory) -> int:
    """Write the plan item of every key on this stack's plans where it differs from the table
    (a key put on a plan in the console, a plan's limits changed): how many were written.
    Management requests: one per page of plans and one per page of each plan's keys."""
    wanted = {
        key_id: plan for plan in stack_plans(gateway, stack).values() for key_id in plan_keys(gateway, plan)
    }
    written = directory.written(list(wanted))
    changed = [key_id for key_id, plan in wanted.items() if written.get(key_id) != plan]
    for key_id in changed:
        directory.put(key_id, wanted[key_id])
    return len(changed)


def _attributes(plan: Plan) -> dict[str, Any]:
    values = asdict(plan)
    item: dict[str, Any] = {"plan_id": {"S": plan.id}, "name": {"S": plan.name}}
    for name in ("quota", "rate_limit", "burst"):
        if values[name] is not None:
            item[name] = {"N": str(values[name])}
    item["credit_based"] = {"BOOL": plan.credit_based}
    if plan.model:
        item["model"] = {"S": plan.model}
    return item


def _plan(item: dict[str, Any]) -> Plan:
    def number(name: str) -> float | None:
        return float(item[name]["N"]) if name in item else None

    quota, burst = number("quota"), number("burst")
    return Plan(
        item["plan_id"]["S"],
        item["name"]["S"],
        int(quota) if quota is not None else None,
        number("rate_limit"),
        int(burst) if burst is not None else None,
        bool(item.get("credit_based", {}).get("BOOL", False)),
        item["model"]["S"] if "model" in item else None,
    )
