"""API keys and usage plans (API Gateway), for the ``alphacut keys`` admin command.

Plans are the stack's usage plans, named ``<stack>-<plan>`` (template.yaml: free, starter,
business with daily quotas; credits, credit-based: its ``billing`` tag). A key is created with the
customer's name and attached to one plan (on a credit-based plan it gets a credit account at 0);
revoking disables it and takes it off its plan. ``credit`` tops a credit-based key up, with an
audit item. The same calls work against AWS and against the local stack's moto.

Usage::

    admin = KeyAdmin(stack="alphacut", ledger=CreditLedger(usage_table))
    key = admin.create("acme-shoes", "starter")      # ApiKey(id, value, customer, plan, enabled)
    admin.list(); admin.revoke(key.id)
    admin.credit(key.id, 37_000, reference="invoice-17")   # millicredits; -> (TopUp, balance)
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any

import boto3

from alphacut.aws.credits import CreditLedger, TopUp
from alphacut.aws.plans import Plan, PlanDirectory, plan_keys, stack_plans
from alphacut.errors import InvalidOption, NotFound


@dataclass
class ApiKey:
    id: str
    customer: str
    plan: str
    enabled: bool
    value: str = ""
    created: str = ""


class KeyAdmin:
    def __init__(self, stack: str, client: Any = None, ledger: CreditLedger | None = None):
        self.stack = stack
        self.client = client or boto3.client("apigateway")
        self.ledger = ledger  # the usage table's credits (None: credit accounts not touched)

    def plans(self) -> dict[str, Plan]:
        return stack_plans(self.client, self.stack)

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
        if self.ledger is not None:
            if chosen.credit_based:
                self.ledger.open(key["id"])
            PlanDirectory(self.ledger.table_name).put(key["id"], chosen)  # calls read the plan here
        return ApiKey(key["id"], customer, plan, True, key.get("value", ""), str(key.get("createdDate", "")))

    def list(self) -> list[ApiKey]:
        keys = []
        for plan in self.plans().values():
            for key_id in self._key_ids(plan):
                detail = self.client.get_api_key(apiKey=key_id, includeValue=False)
                keys.append(
                    ApiKey(
                        key_id,
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
            if key_id in self._key_ids(plan):
                self.client.delete_usage_plan_key(usagePlanId=plan.id, keyId=key_id)
                plan_name = plan.name
        self.client.update_api_key(
            apiKey=key_id, patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}]
        )
        if self.ledger is not None:
            PlanDirectory(self.ledger.table_name).remove(key_id)
        return ApiKey(key_id, detail.get("name", ""), plan_name, False)

    def plan_of(self, key_id: str) -> Plan | None:
        """The plan a key is on (None: on none of this stack's plans)."""
        return next((plan for plan in self.plans().values() if key_id in self._key_ids(plan)), None)

    def _key_ids(self, plan: Plan) -> builtins.list[str]:
        """The ids of the keys on ``plan``, every page."""
        return plan_keys(self.client, plan)

    def credit(self, key_id: str, amount: int, reference: str = "", note: str = "") -> tuple[TopUp, int]:
        """Top a credit-based key up by ``amount`` millicredits: the top-up (its audit item) and the
        balance after. A key on a quota plan, or on none, is refused (InvalidOption)."""
        if self.ledger is None:
            raise InvalidOption("needs the stack's usage table", field="usage_table")
        plan = self.plan_of(key_id)
        if plan is None or not plan.credit_based:
            on = f"plan {plan.name!r}" if plan else "no plan of this stack"
            raise InvalidOption(f"key {key_id} is on {on}, not a credit-based one", field="key")
        top_up = self.ledger.top_up(key_id, amount, reference, note)
        return top_up, self.ledger.balance(key_id) or 0

    def every_key(self) -> builtins.list[ApiKey]:
        """Every key of this stack, revoked ones included (a statement bills the month's usage of
        a key revoked since): those on its plans, and those its ``keys create`` tagged."""
        on_plans = {key.id: key for key in self.list()}
        for page in self.client.get_paginator("get_api_keys").paginate():
            for item in page.get("items", []):
                if item["id"] not in on_plans and (item.get("tags") or {}).get("stack") == self.stack:
                    on_plans[item["id"]] = ApiKey(
                        item["id"],
                        item.get("name", ""),
                        "",
                        bool(item.get("enabled")),
                        created=str(item.get("createdDate", "")),
                    )
        return sorted(on_plans.values(), key=lambda k: (k.customer, k.id))
