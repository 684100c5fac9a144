"""The keys admin behind ``alphacut keys``: the service's own keys (``alphacut.aws.keys.store``) on the
stack's plans (its usage plans, named ``<stack>-<plan>``, read as a catalogue: no key is put on
one). A key is created for a customer on a plan (on a credit-based plan it gets a credit account
at 0) and its value shown once; ``import`` makes many at once; ``rotate`` gives a key a new value
(the old one works for a grace period; balance, usage, plan and statements stay with the key id);
``revoke`` refuses it; ``migrate`` brings keys made the old way (API Gateway API keys on the
stack's usage plans) into the store with their ids and values. ``credit`` tops a credit-based key
up, with an audit item. The same calls work against AWS and against the local stack's moto.

Usage::

    admin = KeyAdmin("alphacut", store=KeyStore(table, secret), ledger=CreditLedger(table))
    key = admin.create("acme-shoes", "starter")      # ApiKey(id, customer, plan, enabled, value)
    admin.create_many([("shop-1", "free"), ("shop-2", "credits")])   # an iterator of ApiKey
    admin.rotate(key.id, grace_seconds=86400); admin.revoke(key.id); admin.list()
    admin.migrate()                                  # the stack's API Gateway keys, into the store
    admin.create_in_account(owner_id, KeyRequest("plugin", ("images",)))   # a store's account
    admin.migrate_accounts()                         # every older key the owner of its own account
    admin.credit(key.id, 37_000, reference="invoke-17")   # millicredits; -> (TopUp, balance)
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3

from alphacut.aws.keys.accounts import AccountKeys, KeyRequest
from alphacut.aws.keys.store import KeyStore, MadeKey, StoredKey
from alphacut.aws.ledger.credits import CreditLedger, TopUp
from alphacut.aws.ledger.plans import Plan, PlanCatalogue, plan_keys, stack_plans
from alphacut.errors import InvalidOption, NotFound
from alphacut.scopes import ALL_SCOPES


@dataclass
class ApiKey:
    id: str
    customer: str
    plan: str
    enabled: bool
    value: str = ""  # only when just made
    created: str = ""
    last_used: str = ""
    scopes: tuple[str, ...] = ALL_SCOPES

    @classmethod
    def of(cls, key: StoredKey, value: str = "") -> ApiKey:
        return cls(
            key.key_id, key.customer, key.plan, key.enabled, value, key.created, key.last_used, key.scopes
        )


class KeyAdmin:
    def __init__(
        self,
        stack: str,
        client: Any = None,
        ledger: CreditLedger | None = None,
        store: KeyStore | None = None,
        keys_per_account: int = 25,
    ):
        self.stack = stack
        self.client = client or boto3.client("apigateway")  # the plans (usage plans), and migrate
        self.ledger = ledger  # the usage table's credits (None: credit accounts not touched)
        self.store = store
        self.keys_per_account = keys_per_account
        self._plans: dict[str, Plan] | None = None

    def plans(self) -> dict[str, Plan]:
        """The stack's plans, read once per admin, and written to the catalogue the authorizer reads."""
        if self._plans is None:
            self._plans = stack_plans(self.client, self.stack)
            if self.store is not None:
                PlanCatalogue(self.store.table_name, self.store.db).write(self._plans)
        return self._plans

    def _plan(self, name: str) -> Plan:
        plans = self.plans()
        if name not in plans:
            known = ", ".join(sorted(plans)) or f"none (is the stack {self.stack!r} deployed?)"
            raise InvalidOption(f"no plan {name!r}; plans: {known}", field="plan")
        return plans[name]

    def _keys(self) -> KeyStore:
        if self.store is None:
            raise InvalidOption("needs the stack's usage table and key-hash secret", field="usage_table")
        return self.store

    def create(self, customer: str, plan: str, scopes: tuple[str, ...] = ALL_SCOPES) -> ApiKey:
        return next(self.create_many([(customer, plan)], scopes))

    def create_many(
        self, rows: Iterable[tuple[str, str]], scopes: tuple[str, ...] = ALL_SCOPES
    ) -> Iterator[ApiKey]:
        """New keys, in batches (a sign-up burst, an import): each with its value, shown once;
        ``scopes``: what each may do (``alphacut.scopes``)."""
        store = self._keys()

        def checked() -> Iterator[tuple[str, str]]:
            for customer, plan in rows:
                self._plan(plan)
                yield customer, plan

        def accounts(key_id: str, plan: str) -> list[dict[str, Any]]:
            on_credits = self.ledger is not None and self._plan(plan).credit_based
            return [self.ledger.account_item(key_id)] if on_credits and self.ledger else []

        made: MadeKey
        for made in store.create_many(checked(), accounts, scopes):
            yield ApiKey.of(made.key, made.value)

    def rotate(self, key_id: str, grace_seconds: int) -> ApiKey:
        made = self._keys().rotate(key_id, grace_seconds)
        return ApiKey.of(made.key, made.value)

    def revoke(self, key_id: str) -> ApiKey:
        return ApiKey.of(self.accounts().revoke_any(key_id))

    def accounts(self) -> AccountKeys:
        return AccountKeys(self._keys(), self.keys_per_account)

    def create_in_account(self, account: str, request: KeyRequest) -> ApiKey:
        """A key of an existing account (its owner key's id), as the store's own /v1/keys makes
        one: the operator may give it any scopes."""
        accounts = self.accounts()
        made = accounts.create(accounts.operator_for(account), request)
        return ApiKey.of(made.key, made.value)

    def migrate_accounts(self) -> int:
        """Every key made before accounts, the owner of its own (safe twice): the keys changed."""
        return self.accounts().migrate()

    def suspend(self, key_id: str, reason: str) -> ApiKey:
        return ApiKey.of(self._keys().suspend(key_id, reason))

    def reinstate(self, key_id: str) -> ApiKey:
        return ApiKey.of(self._keys().reinstate(key_id))

    def suspend_account(self, account: str, reason: str) -> builtins.list[str]:
        """Every key of the account refused until ``reinstate_account`` (a dispute does this)."""
        return self.accounts().suspend_account(account, reason)

    def reinstate_account(self, account: str) -> builtins.list[str]:
        """The operator's decision on a dispute: the account and its suspended keys let in again."""
        return self.accounts().reinstate_account(account)

    def list(self, customer: str = "", limit: int | None = None) -> builtins.list[ApiKey]:
        """Keys of the store, revoked ones included (``customer``: a prefix; ``limit``: at most so many)."""
        return [ApiKey.of(key) for key in self._keys().all(customer, limit)]

    def plan_of(self, key_id: str) -> Plan | None:
        """The plan a key is on (None: no such key, or on no plan of this stack)."""
        key = self._keys().get(key_id)
        return self.plans().get(key.plan) if key is not None else None

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
        """Every key, revoked ones included (a statement bills the month's usage of a key revoked since)."""
        return self.list()

    def migrate(self) -> builtins.list[ApiKey]:
        """Every API Gateway key on this stack's usage plans, into the store with its id (its
        balance and usage carry over) and value (clients keep it): the keys migrated. Keys already
        in the store are left as they are; running it twice migrates nothing more."""
        store = self._keys()
        migrated = []
        for plan in self.plans().values():
            for key_id in plan_keys(self.client, plan):
                if store.get(key_id) is not None:
                    continue
                try:
                    detail = self.client.get_api_key(apiKey=key_id, includeValue=True)
                except self.client.exceptions.NotFoundException:
                    continue
                if not detail.get("enabled", True):
                    continue
                if plan.credit_based and self.ledger is not None:
                    self.ledger.open(key_id)
                migrated.append(
                    ApiKey.of(store.adopt(detail["value"], detail.get("name") or key_id, plan.name, key_id))
                )
        return migrated

    def get(self, key_id: str) -> ApiKey:
        key = self._keys().get(key_id)
        if key is None:
            raise NotFound(f"no API key {key_id}", field="key_id")
        return ApiKey.of(key)
