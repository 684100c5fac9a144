"""API keys and usage plans (API Gateway), for the ``alphacut keys`` admin command.

Plans are the stack's usage plans, named ``<stack>-<plan>`` (template.yaml: free, starter,
business). A key is created with the customer's name and attached to one plan; revoking disables it
and takes it off its plan. The same calls work against AWS and against the local stack's moto.

Usage::

    admin = KeyAdmin(stack="alphacut")
    key = admin.create("acme-shoes", "starter")      # ApiKey(id, value, customer, plan, enabled)
    admin.list(); admin.revoke(key.id)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

from alphacut.errors import InvalidOption, NotFound


@dataclass
class Plan:
    id: str
    name: str  # without the stack prefix
    rate: float | None
    burst: int | None
    daily_quota: int | None


@dataclass
class ApiKey:
    id: str
    customer: str
    plan: str
    enabled: bool
    value: str = ""
    created: str = ""


class KeyAdmin:
    def __init__(self, stack: str, client: Any = None):
        self.stack = stack
        self.client = client or boto3.client("apigateway")

    def plans(self) -> dict[str, Plan]:
        plans = {}
        prefix = f"{self.stack}-"
        for page in self.client.get_paginator("get_usage_plans").paginate():
            for item in page.get("items", []):
                if not item.get("name", "").startswith(prefix):
                    continue
                name = item["name"][len(prefix) :]
                throttle, quota = item.get("throttle") or {}, item.get("quota") or {}
                plans[name] = Plan(
                    item["id"],
                    name,
                    throttle.get("rateLimit"),
                    throttle.get("burstLimit"),
                    quota.get("limit") if quota.get("period", "DAY") == "DAY" else None,
                )
        return plans

    def _plan(self, name: str) -> Plan:
        plans = self.plans()
        if name not in plans:
            known = ", ".join(sorted(plans)) or f"none (is the stack {self.stack!r} deployed?)"
            raise InvalidOption(f"no plan {name!r}; plans: {known}", field="plan")
        return plans[name]

    def create(self, customer: str, plan: str) -> ApiKey:
        if not customer.strip():
            raise InvalidOption("must name the customer", field="customer")
        chosen = self._plan(plan)
        key = self.client.create_api_key(
            name=customer,
            enabled=True,
            description=f"{self.stack} {plan}",
            tags={"customer": customer, "plan": plan, "stack": self.stack},
        )
        self.client.create_usage_plan_key(usagePlanId=chosen.id, keyId=key["id"], keyType="API_KEY")
        return ApiKey(key["id"], customer, plan, True, key.get("value", ""), str(key.get("createdDate", "")))

    def list(self) -> list[ApiKey]:
        keys = []
        for plan in self.plans().values():
            for page in self.client.get_paginator("get_usage_plan_keys").paginate(usagePlanId=plan.id):
                for item in page.get("items", []):
                    detail = self.client.get_api_key(apiKey=item["id"], includeValue=False)
                    keys.append(
                        ApiKey(
                            item["id"],
                            detail.get("name", ""),
                            plan.name,
                            bool(detail.get("enabled")),
                            created=str(detail.get("createdDate", "")),
                        )
                    )
        return sorted(keys, key=lambda k: (k.customer, k.id))

    def revoke(self, key_id: str) -> ApiKey:
        try:
            detail = self.client.get_api_key(apiKey=key_id, includeValue=False)
        except self.client.exceptions.NotFoundException:
            raise NotFound(f"no API key {key_id}", field="key_id") from None
        plan_name = ""
        for plan in self.plans().values():
            members = {
                item["id"]
                for page in self.client.get_paginator("get_usage_plan_keys").paginate(usagePlanId=plan.id)
                for item in page.get("items", [])
            }
            if key_id in members:
                self.client.delete_usage_plan_key(usagePlanId=plan.id, keyId=key_id)
                plan_name = plan.name
        self.client.update_api_key(
            apiKey=key_id, patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}]
        )
        return ApiKey(key_id, detail.get("name", ""), plan_name, False)
