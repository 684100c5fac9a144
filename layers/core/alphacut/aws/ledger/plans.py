"""Plans: the template's usage plans are the catalogue of what a key may be on (their names
``<stack>-<plan>``, daily quota, rate and burst, ``billing`` and ``model`` tags); keys are the
service's own (``alphacut.aws.keys.store``), on no usage plan: the service applies the limits itself
(``alphacut.aws.ledger.limits``), since API Gateway's are best-effort and hold at most 10,000 keys.

API Gateway's management API allows 10 requests a second per account and region, shared by
every deploy and console of the account: a call never spends it. The plans are copied into one
item of the usage table (``PlanCatalogue``), written by ``alphacut keys`` and brought in line by
the scheduled sweep (``sync_plans``: one request a page of plans); the authorizer reads that item.

Usage::

    catalogue = PlanCatalogue("usage-table")
    sync_plans(client("apigateway"), "alphacut", catalogue)   # -> plans changed
    catalogue.read()["starter"]                               # Plan(...)
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


CATALOGUE_KEY = {"pk": {"S": "plans"}, "sk": {"S": "-"}}


class PlanCatalogue:
    """The stack's plans as one item of the usage table (``pk = "plans"``): what the authorizer
    hands a call with its key. Written where plans change (``alphacut keys``) and by the sweep's
    plan sync; read by the authorizer (one item, cached a minute per container)."""

    def __init__(self, table_name: str, db: Any = None):
        self.table_name, self.db = table_name, db

    @property
    def _db(self) -> Any:
        return self.db or client("dynamodb")

    def read(self) -> dict[str, Plan]:
        item = (
            self._db.get_item(TableName=self.table_name, Key=CATALOGUE_KEY, ConsistentRead=True).get("Item")
            or {}
        )
        return {name: _plan(value["M"]) for name, value in item.get("plans", {}).get("M", {}).items()}

    def write(self, plans: dict[str, Plan]) -> None:
        self._db.put_item(
            TableName=self.table_name,
            Item={
                **CATALOGUE_KEY,
                "plans": {"M": {name: {"M": _attributes(plan)} for name, plan in plans.items()}},
            },
        )


def sync_plans(gateway: Any, stack: str, catalogue: PlanCatalogue) -> int:
    """Write this stack's plans into the catalogue where they differ from it (a plan's limits
    changed in the console, a plan added): how many plans changed. Management requests: one per
    page of plans, whatever the number of keys."""
    wanted = stack_plans(gateway, stack)
    written = catalogue.read()
    changed = sum(1 for name, plan in wanted.items() if written.get(name) != plan) + len(
        set(written) - set(wanted)
    )
    if changed:
        catalogue.write(wanted)
    return changed


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
