"""A store's own keys: an account (one balance, its payments and statements) holds many named keys,
each with its scopes, its own daily limit of credits and a test flag; any key of the account with
scope ``keys`` makes, lists, rotates and revokes them (``/v1/keys``), and the operator's CLI does the
same for any account.

What one key may do to the account's keys is bounded by what it may do itself: it makes, rotates,
revokes or reads the callback secret of a key only when that key has no more power than its own
(scopes within its own, a test key if it is one, a daily limit no higher than its own), so a leaked
plugin key with scope ``keys`` cannot mint a key with ``billing`` or without its budget, nor revoke
the owner's key. An account holds at most ``keys_per_account`` live keys (a counter written in the
same transaction as the key), and keeps at least one live key with scope ``keys``.

Items (the usage table): ``pk = "acctkeys#<account>"``, ``sk = "<key id>"`` (a key of the account:
listing is one query, never a scan; a revoked one's is marked ``revoked`` and TTL'd a day later);
``sk = "-"``: ``live`` (its live keys; absent: 1, the owner key an account starts with) and
``managers`` (its live keys with scope ``keys``; absent: its owner's). An account's id is its first
key's id, so a key made before accounts is already the owner of its own (``migrate`` writes what
is implied: safe to run twice).

Usage::

    keys = AccountKeys(KeyStore(table, secret), keys_per_account=25)
    made = keys.create(caller, KeyRequest("storefront plugin", ("images",), daily_limit=50_000))
    keys.list(caller.account_id)                 # the account's live keys, oldest first
    keys.rotate(caller, made.key.key_id, grace_seconds=3600)
    keys.revoke(caller, made.key.key_id)         # LastKeysKey for the last one with scope keys
    keys.migrate()                               # every key the owner of its own account
"""

from __future__ import annotations

import builtins
import unicodedata
from dataclasses import dataclass
from typing import Any

from alphacut.aws.clients import batch_get
from alphacut.aws.keys.authorizer import Caller
from alphacut.aws.keys.store import (
    ACTIVE,
    REVOKED,
    SUSPENDED,
    KeyStore,
    MadeKey,
    StoredKey,
    new_key_id,
    new_value,
)
from alphacut.aws.transactions import transact
from alphacut.errors import (
    AccountSuspended,
    InsufficientScope,
    InvalidOption,
    KeyRevoked,
    LastKeysKey,
    NotFound,
    TooManyKeys,
)
from alphacut.scopes import BILLING, KEYS

MAX_NAME = 64
OPERATOR = "operator"  # the CLI's actor: no key of its own to check
MEMBER_TIDY_SECONDS = 86400  # a revoked key's member item: TTL'd a day later (functions delete nothing)


@dataclass(frozen=True)
class KeyRequest:
    """What a new key is to be: its name, scopes, whether a test key, its daily limit (millicredits)."""

    name: str
    scopes: tuple[str, ...]
    test: bool = False
    daily_limit: int | None = None


def _members(account: str) -> str:
    return f"acctkeys#{account}"


class AccountKeys:
    def __init__(self, store: KeyStore, keys_per_account: int = 25, test_keys_per_account: int = 5):
        self.store, self.keys_per_account = store, keys_per_account
        self.test_keys_per_account = test_keys_per_account

    @property
    def _db(self) -> Any:
        return self.store._db

    # ---- reading ---------------------------------------------------------------------------------
    def list(
        self, account: str, revoked_since: int | None = None, statuses: tuple[str, ...] = (ACTIVE,)
    ) -> builtins.list[StoredKey]:
        """The account's live keys, oldest first (with ``revoked_since``, a Unix time, the keys
        revoked since then too: what they spent today stays in view; ``statuses``: which keys not
        revoked, suspended ones too): one query of its members and one batch read."""
        ids = [account]
        since = {":since": {"N": str(revoked_since)}} if revoked_since is not None else {}
        pages = self._db.get_paginator("query").paginate(
            TableName=self.store.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :k)",
            FilterExpression="attribute_not_exists(revoked)" + (" OR revoked >= :since" if since else ""),
            ExpressionAttributeValues={":pk": {"S": _members(account)}, ":k": {"S": "k"}, **since},
            ProjectionExpression="sk",
        )
        for page in pages:
            ids += [item["sk"]["S"] for item in page.get("Items", []) if item["sk"]["S"] != account]
        keys = [
            key
            for key in self._read(ids)
            if key.account_id == account and (key.status in statuses or (since and key.status == REVOKED))
        ]
        return sorted(keys, key=lambda key: (key.created, key.key_id))

    def _read(self, ids: builtins.list[str]) -> builtins.list[StoredKey]:
        keys = [{"pk": {"S": f"key#{k}"}, "sk": {"S": "-"}} for k in ids]
        return [
            self.store.stored(item)
            for item in batch_get(self._db, self.store.table_name, keys, consistent=True)
        ]

    def owned(self, account: str, key_id: str) -> StoredKey:
        """A live key of the account (NotFound for any other: another account's keys are not said
        to exist)."""
        key = self.store.get(key_id)
        if key is None or key.account_id != account or not key.enabled:
            raise NotFound(f"no live API key {key_id} in this account", field="key_id")
        return key

    # ---- an account stopped (a disputed card payment) ---------------------------------------------
    def suspend_account(self, account: str, reason: str) -> builtins.list[str]:
        """Refuse every key of the account until the operator decides (``reinstate_account``),
        whichever of its keys paid and whatever order its keys were revoked in. The account is
        marked first, so a key made meanwhile is refused (its transaction checks the mark), then
        every live key of it is suspended: the keys suspended now."""
        self._db.update_item(
            TableName=self.store.table_name,
            Key={"pk": {"S": _members(account)}, "sk": {"S": "-"}},
            UpdateExpression="SET suspended = :why",
            ExpressionAttributeValues={":why": {"S": reason[:500]}},
        )
        suspended = []
        for key in self.list(account):
            try:
                self.store.suspend(key.key_id, reason)
            except NotFound:  # revoked meanwhile
                continue
            suspended.append(key.key_id)
        return suspended

    def reinstate_account(self, account: str) -> builtins.list[str]:
        """The operator's decision: the account's mark lifted and its suspended keys let in again
        (the keys reinstated)."""
        self._db.update_item(
            TableName=self.store.table_name,
            Key={"pk": {"S": _members(account)}, "sk": {"S": "-"}},
            UpdateExpression="REMOVE suspended",
        )
        reinstated = []
        for key in self.list(account, statuses=(SUSPENDED,)):
            try:
                self.store.reinstate(key.key_id)
            except NotFound:
                continue
            reinstated.append(key.key_id)
        return reinstated

    def refuse_if_suspended(self, account: str) -> None:
        """``AccountSuspended`` while a dispute stops the account (one consistent read)."""
        item = self._db.get_item(
            TableName=self.store.table_name,
            Key={"pk": {"S": _members(account)}, "sk": {"S": "-"}},
            ConsistentRead=True,
        ).get("Item")
        if item and "suspended" in item:
            raise AccountSuspended(
                "a card payment of this account was disputed: its keys are refused until the operator "
                "decides",
                field="x-api-key",
            )

    # ---- changing --------------------------------------------------------------------------------
    def create(self, actor: Caller, request: KeyRequest) -> MadeKey:
        """A new key of the actor's account, on its plan, for its customer: the value shown once."""
        name = checked_name(request.name)
        if actor.plan is None:
            raise NotFound("this key has no plan to give a new key", field="x-api-key")
        if request.test and BILLING in request.scopes:
            raise InvalidOption(
                "a test key cannot hold scope billing (it would change the account's money)", field="scopes"
            )
        if request.daily_limit is not None and KEYS in request.scopes:
            raise InvalidOption(
                "a key with a daily limit cannot hold scope keys (the keys it made would spend beside "
                "its limit)",
                field="scopes",
            )
        self.refuse_dead(actor)
        account = actor.account_id
        key = StoredKey(
            new_key_id(),
            actor.customer,
            actor.plan.name,
            ACTIVE,
            self.store.now(),
            [],
            scopes=request.scopes,
            account=account,
            name=name,
            test=request.test,
            daily_limit=request.daily_limit,
            counted_apart=request.test,
        )
        refuse_more_power(actor, key)
        value = new_value(request.test)
        key.hashes.append(self.store.fingerprint(value))
        puts = [
            {
                "Put": {
                    "TableName": self.store.table_name,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for item in self.store.items(key, value)
        ]
        member = {"pk": {"S": _members(account)}, "sk": {"S": key.key_id}, "created": {"S": key.created}}
        count = (
            self._count_test(account, +1)
            if key.counted_apart
            else self._count(account, +1, manages(key), self._managers_at_start(account))
        )
        _unless_suspended(count)
        refused = transact(
            self._db, [count, *puts, {"Put": {"TableName": self.store.table_name, "Item": member}}]
        )
        if refused is not None:
            self.refuse_if_suspended(account)  # a dispute stopped the account meanwhile
            most, kind = (
                (self.test_keys_per_account, "live test keys")
                if key.counted_apart
                else (self.keys_per_account, "live keys")
            )
            raise TooManyKeys(
                f"this account holds {most} {kind}, as many as it may: revoke one first",
                field="test" if key.counted_apart else "key",
                limit=most,
            )
        return MadeKey(key, value)

    def _count_test(self, account: str, change: int) -> dict[str, Any]:
        """The account's live test keys, changed by ``change``: counted apart from its live keys, so
        test keys never take the slots the store's own keys need (a new one only below their cap)."""
        values: dict[str, Any] = {":zero": {"N": "0"}, ":change": {"N": str(change)}}
        update: dict[str, Any] = {
            "TableName": self.store.table_name,
            "Key": {"pk": {"S": _members(account)}, "sk": {"S": "-"}},
            "UpdateExpression": "SET test_live = if_not_exists(test_live, :zero) + :change",
            "ExpressionAttributeValues": values,
        }
        if change > 0:
            # no count yet is 0 test keys (a cap of 0: no test key at all)
            update["ConditionExpression"] = (
                "((attribute_not_exists(test_live) AND :zero < :most) OR test_live < :most)"
            )
            values[":most"] = {"N": str(self.test_keys_per_account)}
        return {"Update": update}

    def _managers_at_start(self, account: str) -> int:
        """What an account's count of keys that manage keys starts from: its owner key's (one read,
        only when a key is made)."""
        owner = self.store.get(account)
        return 1 if owner is not None and owner.enabled and manages(owner) else 0

    def _count(self, account: str, change: int, manager: bool, base: int = 1) -> dict[str, Any]:
        """The account's live keys (and those that manage keys, for a ``manager``), changed by
        ``change``: a new one only below the limit, the last one that manages keys never removed.
        An account without counts has one live key, its owner (``base``: whether it manages keys)."""
        values: dict[str, Any] = {":owner": {"N": "1"}, ":change": {"N": str(change)}}
        expression = "SET live = if_not_exists(live, :owner) + :change"
        conditions = []
        if change > 0:  # no counts yet: the owner alone, which a limit of 1 already fills
            conditions.append("((attribute_not_exists(live) AND :owner < :most) OR live < :most)")
            values[":most"] = {"N": str(self.keys_per_account)}
        if manager:
            expression += ", managers = if_not_exists(managers, :base) + :change"
            values[":base"] = {"N": str(base)}
            if change < 0:  # absent: the owner alone manages keys, and it is the last
                conditions.append("managers > :one")
                values[":one"] = {"N": "1"}
        update: dict[str, Any] = {
            "TableName": self.store.table_name,
            "Key": {"pk": {"S": _members(account)}, "sk": {"S": "-"}},
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
        if conditions:
            update["ConditionExpression"] = " AND ".join(conditions)
        return {"Update": update}

    def refuse_dead(self, actor: Caller, what: str = "it manages no keys") -> None:
        """The acting key must still be live (one consistent read): API Gateway lets a revoked key in
        until its cached answer ends, and a revoked key must not make, rotate or revoke keys, nor
        change money or notices (``what`` it may not do, for the refusal), meanwhile."""
        if actor.key_id == OPERATOR:
            return
        key = self.store.get(actor.key_id)
        if key is not None and key.status == SUSPENDED:
            raise AccountSuspended(
                f"this API key is suspended (a disputed card payment): {what}", field="x-api-key"
            )
        if key is None or not key.enabled:
            raise KeyRevoked(f"this API key was revoked: {what}", field="x-api-key")

    def rotate(self, actor: Caller, key_id: str, grace_seconds: int) -> MadeKey:
        self.managed(actor, key_id)
        return self.store.rotate(key_id, grace_seconds)

    def managed(self, actor: Caller, key_id: str) -> StoredKey:
        """A key of the actor's account that the actor may manage (its callback secret, say)."""
        self.refuse_dead(actor)
        key = self.owned(actor.account_id, key_id)
        refuse_more_power(actor, key)
        return key

    def revoke(self, actor: Caller, key_id: str) -> StoredKey:
        """Revoke a key of the account: refused by the authorizer once API Gateway's cache of its
        last answer ends. Never the account's last live key with scope ``keys``: the count of such
        keys is in the same transaction as the revocation, so two revoking each other at once leave
        one."""
        self.managed(actor, key_id)
        return self.revoke_any(key_id, keep_a_manager=True)

    def revoke_any(self, key_id: str, keep_a_manager: bool = False) -> StoredKey:
        """Revoke a key and take it off its account's list and count, in one transaction (the
        operator's verb: no rule about the account's last key that manages keys)."""
        now = int(self.store.clock())

        def account_writes(key: StoredKey) -> list[dict[str, Any]]:
            account = key.account_id
            member = {
                "TableName": self.store.table_name,
                "Key": {"pk": {"S": _members(account)}, "sk": {"S": key.key_id}},
                "UpdateExpression": "SET revoked = :now, expires_at = :tidy",
                "ExpressionAttributeValues": {
                    ":now": {"N": str(now)},
                    ":tidy": {"N": str(now + MEMBER_TIDY_SECONDS)},
                },
            }
            if key.counted_apart:  # a test key made since test keys have their own count
                return [self._count_test(account, -1), {"Update": member}]
            count = self._count(account, -1, manages(key) and keep_a_manager)
            if manages(key) and not keep_a_manager:  # the operator: counted down, never refused
                count = self._count(account, -1, False)
                count["Update"]["UpdateExpression"] += ", managers = if_not_exists(managers, :one) - :one"
                count["Update"]["ExpressionAttributeValues"][":one"] = {"N": "1"}
            return [count, {"Update": member}]

        revoked, refused = self.store.revoke_with(key_id, account_writes)
        if refused is not None:
            raise LastKeysKey(
                "this is the account's last live key that may manage keys: make another first", field="key_id"
            )
        return revoked

    def operator_for(self, account: str) -> Caller:
        """The operator acting on ``account`` (every scope, no limit): its owner key's plan and
        customer, for keys it makes there (NotFound: no such account)."""
        from alphacut.aws.ledger.plans import Plan
        from alphacut.scopes import ALL_SCOPES

        owner = self.store.get(account)
        if owner is None or owner.account_id != account:
            raise NotFound(f"no account {account} (an account's id is its owner key's)", field="account")
        return Caller(OPERATOR, owner.customer, Plan("", owner.plan, None, None), ALL_SCOPES, account)

    def migrate(self) -> int:
        """Every key made before accounts becomes the owner of its own account (its balance, usage,
        payments and statements were kept by its id already): ``account`` written on its items.
        Safe to run twice (a key with an account is left as it is): the keys changed."""
        changed = 0
        for key in self.store.all():
            if self.store.mark_account(key):
                changed += 1
        return changed


def _unless_suspended(count: dict[str, Any]) -> None:
    """The account's count of keys moves only while no dispute stops the account."""
    update = count["Update"]
    condition = update.get("ConditionExpression")
    # each condition the counts write is one parenthesised term (DynamoDB refuses redundant ones)
    update["ConditionExpression"] = (
        f"attribute_not_exists(suspended) AND {condition}" if condition else "attribute_not_exists(suspended)"
    )


def manages(key: StoredKey) -> bool:
    """Whether a key counts as one that manages the account's keys (a live key with scope keys)."""
    return KEYS in key.scopes and not key.test


def checked_name(value: str) -> str:
    """A key's name as a store sees it: 1 to 64 characters, none of them control or format
    characters (a right-to-left override would make a list lie)."""
    name = value.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidOption(f"must be 1 to {MAX_NAME} characters", field="name", limit=MAX_NAME)
    if any(unicodedata.category(character) in ("Cc", "Cf", "Cs", "Co", "Cn") for character in name):
        raise InvalidOption("must be printable text (no control or format characters)", field="name")
    return name


def refuse_more_power(actor: Caller, key: StoredKey) -> None:
    """``InsufficientScope`` unless ``key`` has no more power than ``actor``: its scopes within the
    actor's, a test key if the actor is one, a daily limit no higher than the actor's own."""
    wider = [scope for scope in key.scopes if scope not in actor.scopes]
    if wider:
        raise InsufficientScope(
            f"this key cannot manage a key with scope {wider[0]}, which it does not hold itself",
            scope=wider[0],
        )
    if actor.test and not key.test:
        raise InsufficientScope("a test key manages test keys only", scope=KEYS)
    if actor.daily_limit is not None and (key.daily_limit is None or key.daily_limit > actor.daily_limit):
        raise InsufficientScope(
            "this key has a daily limit of credits: the keys it manages need one no higher", scope=KEYS
        )
