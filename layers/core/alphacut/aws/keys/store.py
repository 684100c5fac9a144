"""The service's own API keys (DynamoDB), any number of them: a key is shown once, when it is made,
and kept only as a keyed hash (HMAC-SHA-256 with the stack's key-hash secret), beside a public id
that the usage, the statements and the logs name.

Items (the usage table):

- ``pk = "apikey#<hash>"``: what the authorizer reads for a key it is shown (one item read):
  ``key_id``, ``customer``, ``plan``, ``scopes``, ``created``, ``account``, ``test``,
  ``daily_limit`` (the key's own fields, copied: the authorizer reads no more); for a value
  rotated out, ``valid_until`` (epoch seconds; past it the key is refused) and ``expires_at``
  (the table's TTL, later, to tidy it away); while its key is suspended, ``suspended`` (the
  reason). A suspension that finds no item for a value (a rotation between its two writes) puts a
  stub: ``suspended`` and ``expires_at`` only, no ``key_id`` (refused; the rotation's put of it
  then fails, so the suspended key gains no new value)
- ``pk = "key#<key id>"``: the key itself: ``customer``, ``plan``, ``scopes`` (space-separated,
  ``alphacut.scopes``; none stored: every scope, as keys made before scopes), ``status`` (active |
  suspended | revoked), ``created``, ``last_used`` (a UTC day), ``hash`` (its current value's),
  ``hashes`` (every value's still let in: the current one, at most ``MAX_IN_GRACE`` in their grace,
  and those the last rotation ended) and ``graces`` (a map: each rotated-out value's
  ``valid_until``, so a rotation reads only the values it drops, to check each is refused by its
  own; absent on a key last rotated before it, whose values' ends a rotation reads once);
  ``account`` (the account whose balance it spends: absent, its own id, so a key made before
  accounts is the owner of its own), ``name``, ``test`` (a test key: never charged),
  ``daily_limit`` (millicredits a UTC day it may spend; absent: no limit of its own)

A rotation gives the key id a new value; the old one works until its grace ends, so the balance,
usage, plan and statements (all by key id) carry over. A rotation writes a bounded number of items
however often the key rotated (the value it retires now, and beyond ``MAX_IN_GRACE`` the value in
grace that ends soonest, ended now), and so do a revocation and a suspension. A revocation ends
every value's item: the authorizer refuses it once API Gateway's cache of its last answer
(``KeyCacheSeconds``) ends (TTL deletes the items a day later). A suspension marks the key first,
then each value the key held at that moment: a rotation racing it answers ``Conflict`` or has its
new value suspended too.

Usage::

    store = KeyStore("usage-table", secret)
    made = store.create("acme-shoes", "starter")           # made.value: shown once, never stored
    store.create("acme-shoes", "starter", scopes=("images",))   # a key for a storefront plugin
    store.find(made.value)                                 # Credential(key_id, customer, plan)
    store.rotate(made.key.key_id, grace_seconds=86400)      # a new value; the old one for a day
    store.revoke(made.key.key_id)
    store.create_many([("shop-1", "free"), ...])           # batched writes: a sign-up burst
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from alphacut.aws.clients import batch_get, client
from alphacut.errors import Conflict, InvalidOption, NotFound
from alphacut.scopes import ALL_SCOPES, scopes_from_text, scopes_text

KEY_PREFIX = "ac_"  # a key's value: the prefix and 40 random characters (240 bits)
TEST_KEY_PREFIX = "ac_test_"  # a test key's, so a store sees which one it pasted
MIN_VALUE_LENGTH = 20  # an adopted value (API Gateway's own minimum, so every migrated key fits)
ACTIVE, REVOKED, SUSPENDED = "active", "revoked", "suspended"
BATCH_ITEMS = 25  # BatchWriteItem's limit
MAX_GRACE_SECONDS = 30 * 86400
ROTATED_TIDY_SECONDS = 86400  # a rotated-out value's item is TTL'd a day after its grace ends
MAX_IN_GRACE = 4  # rotated-out values let in at once: a rotation beyond ends the soonest to end
# what a conditional write meets when another changed the key first (a transaction in flight on it)
CHANGED_MEANWHILE = ("ConditionalCheckFailedException", "TransactionConflictException")
STATUS_ATTEMPTS = 5  # a suspension's write meeting a revocation's transaction: 0.02 to 0.16 s apart


def new_value(test: bool = False) -> str:
    return (TEST_KEY_PREFIX if test else KEY_PREFIX) + secrets.token_urlsafe(30)


def new_key_id() -> str:
    return "k" + secrets.token_hex(6)


@dataclass(frozen=True)
class Credential:
    """What a key's value lets in: the authorizer's view of it."""

    key_id: str
    customer: str
    plan: str
    valid_until: int | None = None  # a rotated-out value: refused after this
    scopes: tuple[str, ...] = ALL_SCOPES
    account: str = ""  # the account it spends from ("": its own id)
    test: bool = False
    daily_limit: int | None = None  # millicredits a UTC day

    @property
    def account_id(self) -> str:
        return self.account or self.key_id


@dataclass
class StoredKey:
    key_id: str
    customer: str
    plan: str
    status: str = ACTIVE
    created: str = ""
    hashes: list[str] = field(default_factory=list)
    last_used: str = ""
    scopes: tuple[str, ...] = ALL_SCOPES
    account: str = ""  # "": its own id (the owner key of its own account)
    name: str = ""
    test: bool = False
    daily_limit: int | None = None  # millicredits a UTC day (None: the account's balance only)
    counted_apart: bool = False  # a test key counted among the account's test keys, not its live keys
    graces: dict[str, int] = field(default_factory=dict)  # a rotated-out value's hash -> valid_until

    @property
    def enabled(self) -> bool:
        return self.status == ACTIVE

    @property
    def account_id(self) -> str:
        return self.account or self.key_id


@dataclass(frozen=True)
class MadeKey:
    """A key just made, with its value: the only moment the value is known."""

    key: StoredKey
    value: str


class KeyStore:
    def __init__(
        self, table_name: str, secret: bytes, clock: Callable[[], float] = time.time, db: Any = None
    ):
        self.table_name, self.secret, self.clock = table_name, secret, clock
        self.db = db  # a DynamoDB client of its own (None: the process's, alphacut.aws.clients)

    @property
    def _db(self) -> Any:
        return self.db or client("dynamodb")

    def fingerprint(self, value: str) -> str:
        """The keyed hash a value is kept as (without the secret, a table dump opens nothing)."""
        return hmac.new(self.secret, value.encode(), hashlib.sha256).hexdigest()

    # ---- the request path ------------------------------------------------------------------------
    def find(self, value: str) -> Credential | None:
        """The key a value belongs to (None: unknown, revoked, or a rotated-out value past its
        grace). One item read, a consistent one: an eventually consistent read may miss a key made
        a moment ago, and API Gateway would cache that Deny for ``KeyCacheSeconds``."""
        item = self._db.get_item(
            TableName=self.table_name, Key=_key(f"apikey#{self.fingerprint(value)}"), ConsistentRead=True
        ).get("Item")
        if not item or "suspended" in item or "key_id" not in item:
            return None  # unknown, suspended, or a value a revocation ended before its rotation wrote it
        valid_until = int(item["valid_until"]["N"]) if "valid_until" in item else None
        if valid_until is not None and valid_until <= self.clock():
            return None
        return Credential(
            item["key_id"]["S"],
            item["customer"]["S"],
            item["plan"]["S"],
            valid_until,
            scopes_from_text(item.get("scopes", {}).get("S")),
            item.get("account", {}).get("S", ""),
            item.get("test", {}).get("BOOL", False),
            int(item["daily_limit"]["N"]) if "daily_limit" in item else None,
        )

    def mark_used(self, key_id: str, day: str) -> None:
        """The key's last use, to the day (the authorizer writes it once a key a day)."""
        self._db.update_item(
            TableName=self.table_name,
            Key=_key(f"key#{key_id}"),
            UpdateExpression="SET last_used = :day",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":day": {"S": day}},
        )

    # ---- the key's life --------------------------------------------------------------------------
    def create(self, customer: str, plan: str, scopes: tuple[str, ...] = ALL_SCOPES) -> MadeKey:
        return next(iter(self.create_many([(customer, plan)], scopes=scopes)))

    def create_many(
        self,
        rows: Iterable[tuple[str, str]],
        extra_items: Callable[[str, str], list[dict[str, Any]]] | None = None,
        scopes: tuple[str, ...] = ALL_SCOPES,
    ) -> Iterator[MadeKey]:
        """New keys, written in batches (BatchWriteItem, 25 items a request), each yielded once its
        items are written. ``extra_items(key_id, plan)``: more items to write with a key (its
        credit account); ``scopes``: what each may do."""
        pending: list[dict[str, Any]] = []
        made: list[MadeKey] = []
        for customer, plan in rows:
            if not customer.strip():
                raise InvalidOption("must name the customer", field="customer")
            value, key_id = new_value(), new_key_id()
            key = StoredKey(
                key_id, customer, plan, ACTIVE, self.now(), [self.fingerprint(value)], scopes=scopes
            )
            items = [*self.items(key, value), *(extra_items(key_id, plan) if extra_items else [])]
            if len(pending) + len(items) > BATCH_ITEMS:
                self._write_batch(pending)
                yield from made
                pending, made = [], []
            pending += items
            made.append(MadeKey(key, value))
        if pending:
            self._write_batch(pending)
        yield from made

    def create_one(
        self, customer: str, plan: str, extra_items: Callable[[str], list[dict[str, Any]]] | None = None
    ) -> MadeKey:
        """One new key with its extra items (a credit account) in one transaction of conditional puts:
        a sign-up's key, made by a function that may not batch-write the key table."""
        if not customer.strip():
            raise InvalidOption("must name the customer", field="customer")
        value, key_id = new_value(), new_key_id()
        key = StoredKey(key_id, customer, plan, ACTIVE, self.now(), [self.fingerprint(value)])
        self._db.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
                for item in [*self.items(key, value), *(extra_items(key_id) if extra_items else [])]
            ]
        )
        return MadeKey(key, value)

    def adopt(self, value: str, customer: str, plan: str, key_id: str) -> StoredKey:
        """Keep an existing value (an API Gateway key being migrated, its id kept so its balance and
        usage carry over): the value keeps working. Adopting it again changes nothing."""
        if len(value) < MIN_VALUE_LENGTH:
            raise InvalidOption(
                f"a key's value must be at least {MIN_VALUE_LENGTH} characters",
                field="value",
                limit=MIN_VALUE_LENGTH,
            )
        known = self.get(key_id)
        fingerprint = self.fingerprint(value)
        if known is not None and fingerprint in known.hashes:
            return known
        key = StoredKey(key_id, customer, plan, ACTIVE, self.now(), [fingerprint])
        self._write_batch(self.items(key, value))
        return key

    def rotate(self, key_id: str, grace_seconds: int) -> MadeKey:
        """A new value for the key; its current one keeps working ``grace_seconds`` more, beside
        those still in an earlier grace, at most ``MAX_IN_GRACE`` of them (beyond, the soonest to
        end is ended now; without a grace every old value is). Each write is conditional, so a
        revocation or a suspension at the same moment wins and the rotation answers ``Conflict``
        (the key changed meanwhile: retry): the key's item only while it is active and unchanged,
        the new value's item only where a revocation or a suspension has not written it first."""
        if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
            raise InvalidOption(
                f"must be 0 to {MAX_GRACE_SECONDS} seconds", field="grace", limit=MAX_GRACE_SECONDS
            )
        key = self._active(key_id)
        value = new_value(key.test)
        fingerprint = self.fingerprint(value)
        now = int(self.clock())
        until = now + grace_seconds
        ends, unended = self._still_in_grace(key, now)
        retiring = [*key.hashes[:1], *unended]  # values with no end yet: this rotation gives them one
        ends.update({old: until for old in retiring})
        kept = sorted(ends, key=lambda old: -ends[old])[:MAX_IN_GRACE] if grace_seconds else []
        ended = [old for old in ends if old not in kept]
        graces = {**{old: ends[old] for old in kept}, **{old: now for old in ended}}
        listed = [fingerprint, *[old for old in key.hashes if old in graces]]
        rotated = replace(key, status=ACTIVE, hashes=listed, graces=graces)
        own_item, value_item = self.items(rotated, value)
        self._write_rotation(key, rotated, own_item, value_item)
        for old in retiring:
            if old in kept:
                self._retire_value(old, until)
        for old in ended:  # listed on the key until its next rotation: a revocation ends them too
            self._end_value(old, now)
        if not grace_seconds:
            self._list_only(key_id, fingerprint, own_item["hashes"])
            rotated.hashes, rotated.graces = [fingerprint], {}
        return MadeKey(rotated, value)

    def _still_in_grace(self, key: StoredKey, now: int) -> tuple[dict[str, int], list[str]]:
        """The key's rotated-out values still let in, with when each grace ends, and those with no
        end at all (a rotation that stopped between its writes). A value the key's ``graces`` says
        is past its grace, or has no end for (a key last rotated before ``graces`` was kept), is
        read once from its item before it is dropped: only its own ``valid_until`` refuses it, and
        a value dropped from the list while it still works would outlive a revocation."""
        ends = {old: key.graces[old] for old in key.hashes[1:] if key.graces.get(old, now) > now}
        unread = [old for old in key.hashes[1:] if old not in ends]
        unended = []
        wanted = [_key(f"apikey#{old}") for old in unread]
        for item in batch_get(self._db, self.table_name, wanted, consistent=True) if wanted else []:
            if "key_id" not in item:
                continue  # a stub a revocation or a suspension wrote: no value of the key
            old = item["pk"]["S"].removeprefix("apikey#")
            if "valid_until" in item:
                ends[old] = int(item["valid_until"]["N"])
            else:
                unended.append(old)
        return {old: end for old, end in ends.items() if end > now}, unended

    def _write_rotation(
        self, key: StoredKey, rotated: StoredKey, own_item: dict[str, Any], value_item: dict[str, Any]
    ) -> None:
        """The key's item and its new value's, each on its condition; ``Conflict`` when a revocation,
        a suspension or another rotation changed the key first (the key's item given back its
        values when the new one could not be written)."""
        listed = False
        try:
            # an update, not a put: the key's item keeps what others wrote on it (its callback
            # secret's generation, its last use)
            self._db.update_item(
                TableName=self.table_name,
                Key=_key(f"key#{key.key_id}"),
                UpdateExpression="SET #hash = :hash, hashes = :hashes, graces = :graces",
                ConditionExpression="#status = :active AND hashes = :seen",
                ExpressionAttributeNames={"#hash": "hash", "#status": "status"},
                ExpressionAttributeValues={
                    ":hash": own_item["hash"],
                    ":hashes": own_item["hashes"],
                    ":graces": _graces_map(rotated.graces),
                    ":active": {"S": ACTIVE},
                    ":seen": _hash_list(key.hashes),
                },
            )
            listed = True
            self._db.put_item(
                TableName=self.table_name, Item=value_item, ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as error:
            if _error_code(error) not in CHANGED_MEANWHILE:
                raise
            if listed:
                self._unlist(key, own_item["hashes"])
            raise Conflict(
                f"API key {key.key_id} changed meanwhile (revoked, suspended or rotated): retry",
                field="key_id",
            ) from None

    def _unlist(self, key: StoredKey, written: dict[str, Any]) -> None:
        """A rotation whose new value a suspension ended first: the key's item as it was before it
        (its values' graces unchanged), unless a revocation or another rotation changed it since."""
        self._update_key_unless_changed(
            key.key_id,
            "SET #hash = :hash, hashes = :hashes, graces = :graces",
            "hashes = :written",
            {"#hash": "hash"},
            {
                ":hash": {"S": key.hashes[0]},
                ":hashes": _hash_list(key.hashes),
                ":graces": _graces_map(key.graces),
                ":written": written,
            },
        )

    def _list_only(self, key_id: str, fingerprint: str, written: dict[str, Any]) -> None:
        """The ended values off the key's list after a rotation without grace (a revocation meanwhile
        ends them anyway, and a later rotation drops them: nothing to do when the key changed)."""
        self._update_key_unless_changed(
            key_id,
            "SET hashes = :hashes, graces = :none",
            "#status = :active AND hashes = :written",
            {"#status": "status"},
            {
                ":hashes": _hash_list([fingerprint]),
                ":none": {"M": {}},
                ":active": {"S": ACTIVE},
                ":written": written,
            },
        )

    def _update_key_unless_changed(
        self, key_id: str, expression: str, condition: str, names: dict[str, str], values: dict[str, Any]
    ) -> None:
        """One conditional update of the key's item that does nothing where the key changed meanwhile
        (its condition failed, or a transaction held the item)."""
        try:
            self._db.update_item(
                TableName=self.table_name,
                Key=_key(f"key#{key_id}"),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if _error_code(error) not in CHANGED_MEANWHILE:
                raise

    def _retire_value(self, fingerprint: str, until: int) -> None:
        """A value rotated out: let in until ``until`` (a value already retiring keeps its own end)."""
        try:
            self._db.update_item(
                TableName=self.table_name,
                Key=_key(f"apikey#{fingerprint}"),
                UpdateExpression="SET valid_until = if_not_exists(valid_until, :until), expires_at = :tidy",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={
                    ":until": {"N": str(until)},
                    ":tidy": {"N": str(until + ROTATED_TIDY_SECONDS)},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            pass  # gone already (its grace ended and TTL took it)

    def revoke(self, key_id: str) -> StoredKey:
        """Refuse every value of the key from now (``revoke_with``, nothing else written)."""
        return self.revoke_with(key_id)[0]

    def revoke_with(
        self, key_id: str, also: Callable[[StoredKey], list[dict[str, Any]]] | None = None
    ) -> tuple[StoredKey, list[str] | None]:
        """Refuse every value of the key from now (once the authorizer's cache of it ends): the key
        marked revoked in one transaction with ``also(key)`` (its account's count), on condition that
        it is active and its values are the ones read (a rotation meanwhile: read again); then every
        value's item ended (not deleted: no function may delete items; TTL tidies them). The key, and
        None, or the cancellation codes when one of ``also``'s conditions refused (nothing written)."""
        from alphacut.aws.transactions import CONDITION_FAILED, transact

        for _ in range(4):
            key = self.get(key_id)
            if key is None or key.status == REVOKED:
                raise NotFound(f"no API key {key_id} that is not revoked", field="key_id")
            mark = {
                "Update": {
                    "TableName": self.table_name,
                    "Key": _key(f"key#{key_id}"),
                    "UpdateExpression": "SET #status = :revoked, hashes = :none REMOVE graces",
                    "ConditionExpression": "#status = :seen_status AND hashes = :seen",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {
                        ":revoked": {"S": REVOKED},
                        ":none": {"L": []},
                        ":seen_status": {"S": key.status},
                        ":seen": _hash_list(key.hashes),
                    },
                }
            }
            refused = transact(self._db, [mark, *(also(key) if also else [])])
            if refused is None:
                break
            if refused[0] != CONDITION_FAILED:
                return key, refused  # the account's rule refused: nothing was written
        else:
            raise NotFound(f"API key {key_id} kept changing: try again", field="key_id")
        now = int(self.clock())
        for fingerprint in key.hashes:
            self._end_value(fingerprint, now, even_unwritten=True)
        key.status, key.hashes = REVOKED, []
        return key, None

    def _end_value(self, fingerprint: str, now: int, even_unwritten: bool = False) -> None:
        """A value refused from ``now`` (a grace it had ends too). ``even_unwritten``: its item is
        written ended even where it does not exist yet, so a rotation racing a revocation cannot
        write it afterwards (``rotate`` puts a new value only where none is)."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": _key(f"apikey#{fingerprint}"),
            "UpdateExpression": "SET valid_until = :now, expires_at = :tidy",
            "ExpressionAttributeValues": {
                ":now": {"N": str(now)},
                ":tidy": {"N": str(now + ROTATED_TIDY_SECONDS)},
            },
        }
        if not even_unwritten:
            request["ConditionExpression"] = "attribute_exists(pk)"
        try:
            self._db.update_item(**request)
        except self._db.exceptions.ConditionalCheckFailedException:
            pass  # gone already (TTL took it)

    def suspend(self, key_id: str, reason: str) -> StoredKey:
        """Refuse the key's values until ``reinstate`` (a card payment disputed: the operator decides);
        unlike ``revoke`` the values stay the key's."""
        return self._set_suspension(key_id, SUSPENDED, reason)

    def reinstate(self, key_id: str) -> StoredKey:
        return self._set_suspension(key_id, ACTIVE, "")

    def _set_suspension(self, key_id: str, status: str, reason: str) -> StoredKey:
        """The key's status first (a rotation after it fails its condition), then each value the
        key's item held at that moment: a suspension covers every value, a rotation's new one
        included, whatever the order of their writes."""
        key = _stored(self._mark_status(key_id, status))
        for fingerprint in key.hashes:
            if status == SUSPENDED:
                self._suspend_value(fingerprint, reason)
            else:
                self._reinstate_value(fingerprint)
        return key

    def _mark_status(self, key_id: str, status: str) -> dict[str, Any]:
        """The key's item with its new status (``NotFound``: none, or revoked). A revocation's
        transaction in flight on it refuses the write (``TransactionConflictException``): tried
        again, shortly, until the revocation is done."""
        attempt = 0
        while True:
            try:
                return dict(
                    self._db.update_item(
                        TableName=self.table_name,
                        Key=_key(f"key#{key_id}"),
                        UpdateExpression="SET #status = :status",
                        ConditionExpression="attribute_exists(pk) AND #status <> :revoked",
                        ExpressionAttributeNames={"#status": "status"},
                        ExpressionAttributeValues={":status": {"S": status}, ":revoked": {"S": REVOKED}},
                        ReturnValues="ALL_NEW",
                    )["Attributes"]
                )
            except ClientError as error:
                code = _error_code(error)
                if code == "ConditionalCheckFailedException":
                    raise NotFound(f"no API key {key_id} that is not revoked", field="key_id") from None
                attempt += 1
                if code != "TransactionConflictException" or attempt == STATUS_ATTEMPTS:
                    raise
                time.sleep(0.01 * 2**attempt)

    def _suspend_value(self, fingerprint: str, reason: str) -> None:
        """One value refused until reinstated. No item yet (a rotation between its two writes): a
        stub, suspended and TTL'd, so the rotation's put of the value (only where none is) fails;
        the rotation writing it meanwhile: suspended as it is then. A real value's item keeps its
        own ``expires_at`` (none on a value in use)."""
        why = {":why": {"S": reason}}
        for _ in range(2):
            if self._update_if(f"apikey#{fingerprint}", "SET suspended = :why", "attribute_exists(pk)", why):
                return
            tidy = int(self.clock()) + ROTATED_TIDY_SECONDS
            try:
                self._db.put_item(
                    TableName=self.table_name,
                    Item={
                        **_key(f"apikey#{fingerprint}"),
                        "suspended": why[":why"],
                        "expires_at": {"N": str(tidy)},
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                )
                return
            except self._db.exceptions.ConditionalCheckFailedException:
                continue  # the rotation wrote it meanwhile

    def _reinstate_value(self, fingerprint: str) -> None:
        """One value let in again: a real value's item only (a stub a suspension wrote stays refused
        and TTL takes it)."""
        try:
            self._db.update_item(
                TableName=self.table_name,
                Key=_key(f"apikey#{fingerprint}"),
                UpdateExpression="REMOVE suspended",
                ConditionExpression="attribute_exists(key_id)",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            pass  # a stub, or a rotated-out value TTL took

    def get(self, key_id: str) -> StoredKey | None:
        item = self._db.get_item(
            TableName=self.table_name, Key=_key(f"key#{key_id}"), ConsistentRead=True
        ).get("Item")
        return _stored(item) if item else None

    def all(self, customer: str = "", limit: int | None = None) -> list[StoredKey]:
        """Keys, revoked ones included, whose customer starts with ``customer``, at most ``limit``
        (a scan: for the admin, never the request path; it reads the table until it has them)."""
        values = {":key": {"S": "key#"}}
        condition = "begins_with(pk, :key)"
        if customer:
            values[":customer"] = {"S": customer}
            condition += " AND begins_with(customer, :customer)"
        pages = self._db.get_paginator("scan").paginate(
            TableName=self.table_name, FilterExpression=condition, ExpressionAttributeValues=values
        )
        keys: list[StoredKey] = []
        for page in pages:
            keys += [_stored(item) for item in page.get("Items", [])]
            if limit is not None and len(keys) >= limit:
                keys = keys[:limit]
                break
        return sorted(keys, key=lambda k: (k.customer, k.key_id))

    def _active(self, key_id: str) -> StoredKey:
        key = self.get(key_id)
        if key is None or not key.enabled:
            raise NotFound(f"no active API key {key_id}", field="key_id")
        return key

    def items(self, key: StoredKey, value: str) -> list[dict[str, Any]]:
        """The key's own item and its newest value's."""
        shared = {
            "customer": {"S": key.customer},
            "plan": {"S": key.plan},
            "scopes": {"S": scopes_text(key.scopes)},
            "created": {"S": key.created},
            **_account_fields(key),
        }
        return [
            {
                **_key(f"key#{key.key_id}"),
                **shared,
                "status": {"S": key.status},
                "hash": {"S": key.hashes[0]},
                "hashes": _hash_list(key.hashes),
                **({"graces": _graces_map(key.graces)} if key.graces else {}),
                **({"name": {"S": key.name}} if key.name else {}),
                **({"counted_apart": {"BOOL": True}} if key.counted_apart else {}),
            },
            {**_key(f"apikey#{self.fingerprint(value)}"), "key_id": {"S": key.key_id}, **shared},
        ]

    @staticmethod
    def stored(item: dict[str, Any]) -> StoredKey:
        return _stored(item)

    def mark_account(self, key: StoredKey) -> bool:
        """Write the account a key made before accounts belongs to (its own id) on its items: False
        when it had one already (safe to run twice)."""
        account = {":account": {"S": key.key_id}}
        if not self._update_if(
            f"key#{key.key_id}",
            "SET account = :account",
            "attribute_exists(pk) AND attribute_not_exists(account)",
            account,
        ):
            return False
        for fingerprint in key.hashes:  # a rotated-out value TTL took is left as it is
            self._update_if(
                f"apikey#{fingerprint}",
                "SET account = if_not_exists(account, :account)",
                "attribute_exists(pk)",
                account,
            )
        return True

    def _update_if(self, pk: str, expression: str, condition: str, values: dict[str, Any]) -> bool:
        """One conditional update of an item: whether its condition held."""
        try:
            self._db.update_item(
                TableName=self.table_name,
                Key=_key(pk),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _write_batch(self, items: list[dict[str, Any]]) -> None:
        """Put the items, 25 a request, again for any DynamoDB leaves unprocessed."""
        for start in range(0, len(items), BATCH_ITEMS):
            request = {
                self.table_name: [
                    {"PutRequest": {"Item": item}} for item in items[start : start + BATCH_ITEMS]
                ]
            }
            for attempt in range(8):
                left = self._db.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
                if not left:
                    break
                request = left
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise RuntimeError("DynamoDB left key items unwritten after 8 attempts: run the import again")

    def now(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock()))


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "-"}}


def _hash_list(hashes: list[str]) -> dict[str, Any]:
    return {"L": [{"S": h} for h in hashes]}


def _graces_map(graces: dict[str, int]) -> dict[str, Any]:
    return {"M": {h: {"N": str(until)} for h, until in graces.items()}}


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _account_fields(key: StoredKey) -> dict[str, Any]:
    """What both of a key's items say of its account (the authorizer reads the value's item only)."""
    fields: dict[str, Any] = {"account": {"S": key.account_id}}
    if key.test:
        fields["test"] = {"BOOL": True}
    if key.daily_limit is not None:
        fields["daily_limit"] = {"N": str(key.daily_limit)}
    return fields


def _stored(item: dict[str, Any]) -> StoredKey:
    return StoredKey(
        item["pk"]["S"].removeprefix("key#"),
        item["customer"]["S"],
        item["plan"]["S"],
        item["status"]["S"],
        item.get("created", {}).get("S", ""),
        [h["S"] for h in item.get("hashes", {}).get("L", [])],
        item.get("last_used", {}).get("S", ""),
        scopes_from_text(item.get("scopes", {}).get("S")),
        item.get("account", {}).get("S", ""),
        item.get("name", {}).get("S", ""),
        item.get("test", {}).get("BOOL", False),
        int(item["daily_limit"]["N"]) if "daily_limit" in item else None,
        item.get("counted_apart", {}).get("BOOL", False),
        {h: int(until["N"]) for h, until in item.get("graces", {}).get("M", {}).items()},
    )
