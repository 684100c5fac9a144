"""API Gateway's Lambda REQUEST authorizer over the service's own keys: the ``x-api-key`` header's
value, hashed, found in the key store (one item read), its plan from the catalogue (one item,
cached a minute per container). An allowed key's policy covers the whole API (API Gateway caches
the answer per key value for ``KeyCacheSeconds`` and applies it to every route: a policy for one
route only would refuse the next route within the cache) and carries the caller in its context,
so the functions never look the key or its plan up. An unknown, revoked or rotated-out key gets a
Deny (cached too: a made-up key hammering the API costs one read per cache period).

Usage::

    policy = authorize(event, store, catalogue)      # the function's handler, in a few lines
    caller = Caller.from_event(proxy_event)          # a function, from requestContext.authorizer
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from alphacut.aws.keys.store import KeyStore
from alphacut.aws.ledger.plans import Plan, PlanCatalogue
from alphacut.scopes import ALL_SCOPES, scopes_from_text, scopes_text

API_KEY_HEADER = "x-api-key"
CATALOGUE_CACHE_SECONDS = 60
logger = Logger(child=True)


@dataclass(frozen=True)
class Caller:
    """Who a call is: the key's public id, its customer, its plan (None: outside a keyed call),
    what it may do (``alphacut.scopes``), the account it spends from, whether it is a test key and
    its own daily limit of credits (millicredits; None: the account's balance only)."""

    key_id: str
    customer: str = ""
    plan: Plan | None = None
    scopes: tuple[str, ...] = ALL_SCOPES
    account: str = ""  # "": the key's own id (a key made before accounts owns its own)
    test: bool = False
    daily_limit: int | None = None

    @property
    def account_id(self) -> str:
        return self.account or self.key_id

    def to_context(self) -> dict[str, str | int | float | bool]:
        """The authorizer's context: flat strings, numbers and booleans (no nulls), as API Gateway
        takes them; -1 and "" say none."""
        plan = self.plan
        return {
            "key_id": self.key_id,
            "customer": self.customer,
            "plan": plan.name if plan else "",
            "plan_id": plan.id if plan else "",
            "quota": plan.quota if plan and plan.quota is not None else -1,
            "rate_limit": plan.rate_limit if plan and plan.rate_limit is not None else -1,
            "burst": plan.burst if plan and plan.burst is not None else -1,
            "credit_based": bool(plan and plan.credit_based),
            "model": (plan.model or "") if plan else "",
            "scopes": scopes_text(self.scopes),
            "account": self.account_id,
            "test": self.test,
            "daily_limit": self.daily_limit if self.daily_limit is not None else -1,
        }

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Caller | None:
        """The caller the authorizer let in (None: no authorizer ran, a keyless route). API Gateway
        hands the context's values on as strings in a REST proxy event; both are read."""
        context = (event.get("requestContext") or {}).get("authorizer") or {}
        key_id = context.get("key_id")
        if not key_id:
            return None

        def number(name: str) -> float | None:
            value = float(context.get(name, -1))
            return None if value < 0 else value

        plan = None
        if context.get("plan"):
            quota, burst = number("quota"), number("burst")
            plan = Plan(
                str(context.get("plan_id", "")),
                str(context["plan"]),
                int(quota) if quota is not None else None,
                number("rate_limit"),
                int(burst) if burst is not None else None,
                str(context.get("credit_based")).lower() == "true",
                str(context.get("model") or "") or None,
            )
        scopes = scopes_from_text(str(context.get("scopes") or ""))
        limit = number("daily_limit")
        return cls(
            str(key_id),
            str(context.get("customer", "")),
            plan,
            scopes,
            str(context.get("account") or ""),
            str(context.get("test")).lower() == "true",
            int(limit) if limit is not None else None,
        )


class Authorizer:
    """The authorizer's state for a container: the store, and the catalogue as last read."""

    def __init__(self, store: KeyStore, catalogue: PlanCatalogue, clock: Callable[[], float] = time.time):
        self.store, self.catalogue, self.clock = store, catalogue, clock
        self._plans: tuple[float, dict[str, Plan]] | None = None
        self._marked: dict[str, str] = {}  # key id -> the day its last use was written

    def plan(self, name: str) -> Plan | None:
        """A plan of the catalogue as last read (a minute at most), read again for a plan it lacks
        (one added since: only keys name plans, so a made-up name never gets here)."""
        now = self.clock()
        if (
            self._plans is None
            or now - self._plans[0] >= CATALOGUE_CACHE_SECONDS
            or name not in self._plans[1]
        ):
            self._plans = (now, self.catalogue.read())
        return self._plans[1].get(name)

    def authorize(self, event: dict[str, Any]) -> dict[str, Any]:
        """The policy for a REQUEST authorizer event."""
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        value = headers.get(API_KEY_HEADER) or ""
        credential = self.store.find(value) if value else None
        plan = self.plan(credential.plan) if credential else None
        if credential is None or plan is None:
            logger.info("key refused", extra={"known": credential is not None})
            return policy("anonymous", "Deny", event["methodArn"])
        self._mark_used(credential.key_id)
        caller = Caller(
            credential.key_id,
            credential.customer,
            plan,
            credential.scopes,
            credential.account_id,
            credential.test,
            credential.daily_limit,
        )
        return policy(credential.key_id, "Allow", event["methodArn"], caller.to_context())

    def _mark_used(self, key_id: str) -> None:
        day = time.strftime("%Y-%m-%d", time.gmtime(self.clock()))
        if self._marked.get(key_id) == day:
            return
        try:
            self.store.mark_used(key_id, day)
            self._marked[key_id] = day
        except Exception as error:  # noqa: BLE001 - a last-used day is never worth a refusal
            logger.warning("last use not written", extra={"key_id": key_id, "error": str(error)})


def whole_api(method_arn: str) -> str:
    """``arn:...:<api id>/<stage>/<verb>/<path>`` -> ``arn:...:<api id>/<stage>/*``: every route."""
    head, _, rest = method_arn.partition(":execute-api:")
    parts = rest.split("/")
    return f"{head}:execute-api:{'/'.join(parts[:2])}/*" if len(parts) >= 2 else method_arn


def policy(
    principal: str, effect: str, method_arn: str, context: dict[str, Any] | None = None
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": whole_api(method_arn)}
            ],
        },
    }
    if context:
        answer["context"] = context
    return answer
