"""A store's account and its keys (alphacut.aws.keys.accounts) against moto's DynamoDB: keys made
before accounts become the owners of their own (twice is once), what one key may do to another,
the account's limit of live keys, and a rotation that keeps what others wrote on the key."""

from __future__ import annotations

import boto3
import pytest
from alphacut.aws.callbacks.secrets import CallbackSecrets
from alphacut.aws.keys.accounts import AccountKeys, KeyRequest
from alphacut.aws.keys.authorizer import Authorizer, Caller
from alphacut.aws.keys.store import KeyStore
from alphacut.aws.ledger.credits import CreditLedger
from alphacut.aws.ledger.plans import Plan, PlanCatalogue
from alphacut.errors import (
    Conflict,
    InsufficientScope,
    InvalidOption,
    KeyRevoked,
    LastKeysKey,
    NotFound,
    TooManyKeys,
)
from alphacut.scopes import ALL_SCOPES

from tests.unit.moto_table import usage_table

TABLE = "accounts-tests"
SECRET = b"a-hashing-key-of-the-stack-for-these-tests"
CREDITS = Plan("p2", "credits", None, 5.0, 10, credit_based=True)
ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/v1/cutout"


@pytest.fixture
def store(monkeypatch):
    with usage_table(monkeypatch, TABLE):
        PlanCatalogue(TABLE).write({"credits": CREDITS})
        yield KeyStore(TABLE, SECRET)


def owner_of(store: KeyStore) -> Caller:
    made = store.create("acme-shoes", "credits")
    return Caller(made.key.key_id, "acme-shoes", CREDITS, ALL_SCOPES, made.key.key_id)


def test_keys_made_before_accounts_become_owners_of_their_own_and_a_second_migration_changes_nothing(store):
    old = store.create("old-shop", "credits")
    db = boto3.client("dynamodb")
    for pk in (
        f"key#{old.key.key_id}",
        f"apikey#{store.fingerprint(old.value)}",
    ):  # as written before accounts
        db.update_item(
            TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": "-"}}, UpdateExpression="REMOVE account"
        )
    ledger = CreditLedger(TABLE)
    ledger.open(old.key.key_id)
    ledger.top_up(old.key.key_id, 7000, reference="before")
    secrets = CallbackSecrets(TABLE, b"master")
    secret = secrets.rotate(old.key.key_id, 0)
    assert store.find(old.value).account_id == old.key.key_id  # absent: its own id, before migrating
    keys = AccountKeys(store)
    assert keys.migrate() == 1 and keys.migrate() == 0
    assert (
        store.get(old.key.key_id).account == old.key.key_id
        and store.find(old.value).account == old.key.key_id
    )
    assert ledger.balance(old.key.key_id) == 7000 and secrets.secret(old.key.key_id) == secret
    assert [key.key_id for key in keys.list(old.key.key_id)] == [old.key.key_id]


def test_a_key_makes_only_keys_with_no_more_power_than_its_own(store):
    owner = owner_of(store)
    keys = AccountKeys(store)
    with pytest.raises(
        InvalidOption
    ):  # a key with a limit holds no keys scope: its keys would spend beside it
        keys.create(owner, KeyRequest("plugin admin", ("images", "keys"), daily_limit=5000))
    plugin = keys.create(owner, KeyRequest("plugin admin", ("images", "keys")))
    # as a key made before that rule would be: it still makes no key beyond its own limit
    actor = Caller(
        plugin.key.key_id, "acme-shoes", CREDITS, ("images", "keys"), owner.key_id, daily_limit=5000
    )
    with pytest.raises(InsufficientScope):
        keys.create(actor, KeyRequest("billing", ("images", "billing"), daily_limit=1000))
    with pytest.raises(InsufficientScope):
        keys.create(actor, KeyRequest("no limit", ("images",)))
    with pytest.raises(InsufficientScope):  # nor take over the owner's key (its value, or revoke it)
        keys.rotate(actor, owner.key_id, 0)
    with pytest.raises(InsufficientScope):
        keys.revoke(actor, owner.key_id)
    kept = keys.create(actor, KeyRequest("small", ("images",), daily_limit=2000))
    assert {key.key_id for key in keys.list(owner.key_id)} == {
        owner.key_id,
        plugin.key.key_id,
        kept.key.key_id,
    }
    stranger = owner_of(store)
    with pytest.raises(NotFound):
        keys.revoke(stranger, kept.key.key_id)


def test_an_account_holds_its_limit_of_live_keys_and_never_loses_its_last_keys_key(store):
    owner = owner_of(store)
    keys = AccountKeys(store, keys_per_account=3)
    first = keys.create(owner, KeyRequest("one", ("images",)))
    keys.create(owner, KeyRequest("two", ("images",)))
    with pytest.raises(TooManyKeys):
        keys.create(owner, KeyRequest("three", ("images",)))
    keys.revoke(owner, first.key.key_id)
    keys.create(owner, KeyRequest("three", ("images",)))  # a revoked key frees its place
    with pytest.raises(LastKeysKey):
        keys.revoke(owner, owner.key_id)
    assert store.find(first.value) is None


def test_a_rotation_keeps_the_keys_callback_secret_and_account_and_its_value_its_test_prefix(store):
    owner = owner_of(store)
    keys = AccountKeys(store)
    sandbox = keys.create(owner, KeyRequest("sandbox", ("images",), test=True))
    secrets = CallbackSecrets(TABLE, b"master")
    secret = secrets.rotate(sandbox.key.key_id, 0)
    rotated = keys.rotate(owner, sandbox.key.key_id, 0)
    assert rotated.value.startswith("ac_test_") and secrets.secret(sandbox.key.key_id) == secret
    context = Authorizer(store, PlanCatalogue(TABLE)).authorize(
        {"type": "REQUEST", "methodArn": ARN, "headers": {"x-api-key": rotated.value}}
    )["context"]
    assert (context["account"], context["test"], context["scopes"]) == (owner.key_id, True, "images")
    assert store.find(sandbox.value) is None  # no grace: the old value is refused at once


class Interleaved:
    """The key store's DynamoDB client, with ``before(operation, request)`` run before each call: a
    second function's whole operation slipped in between two writes of the first."""

    def __init__(self, before):
        self.real, self.before = boto3.client("dynamodb"), before
        self.exceptions = self.real.exceptions

    def __getattr__(self, name):
        call = getattr(self.real, name)

        def slipped(**request):
            self.before(name, request)
            return call(**request)

        return slipped


def counts(account: str) -> dict:
    item = boto3.client("dynamodb").get_item(
        TableName=TABLE, Key={"pk": {"S": f"acctkeys#{account}"}, "sk": {"S": "-"}}
    )
    return {
        name: int(value["N"]) for name, value in item.get("Item", {}).items() if name in ("live", "managers")
    }


def test_a_revocation_slipped_into_a_rotation_leaves_no_value_of_the_key_that_works(store):
    owner = owner_of(store)
    plugin = AccountKeys(store).create(owner, KeyRequest("plugin", ("images",)))
    slipped = []

    def revoke_first(operation, request):
        if operation == "put_item" and request["Item"]["pk"]["S"].startswith("apikey#") and not slipped:
            slipped.append(AccountKeys(KeyStore(TABLE, SECRET)).revoke(owner, plugin.key.key_id))

    racing = AccountKeys(KeyStore(TABLE, SECRET, db=Interleaved(revoke_first)))
    with pytest.raises(Conflict):  # 409: the key changed meanwhile
        racing.rotate(owner, plugin.key.key_id, 0)
    assert slipped and store.find(plugin.value) is None
    assert store.get(plugin.key.key_id).status == "revoked" and counts(owner.key_id)["live"] == 1


def test_a_rotation_slipped_into_a_revocation_has_its_new_value_ended_too(store):
    owner = owner_of(store)
    plugin = AccountKeys(store).create(owner, KeyRequest("plugin", ("images",)))
    rotated = []

    def rotate_first(operation, request):
        if operation == "transact_write_items" and not rotated:
            rotated.append(AccountKeys(KeyStore(TABLE, SECRET)).rotate(owner, plugin.key.key_id, 3600))

    AccountKeys(KeyStore(TABLE, SECRET, db=Interleaved(rotate_first))).revoke(owner, plugin.key.key_id)
    assert rotated and store.find(rotated[0].value) is None and store.find(plugin.value) is None


def test_two_keys_that_manage_keys_revoking_each_other_leave_one_and_a_key_is_counted_down_once(store):
    owner = owner_of(store)
    keys = AccountKeys(store)
    second = keys.create(owner, KeyRequest("second admin", ("images", "keys")))
    assert counts(owner.key_id) == {"live": 2, "managers": 2}
    keys.revoke_any(owner.key_id, keep_a_manager=True)  # as second revoking the owner
    with pytest.raises(LastKeysKey):
        keys.revoke_any(second.key.key_id, keep_a_manager=True)  # as the owner, at the same moment
    with pytest.raises(NotFound):
        keys.revoke_any(owner.key_id, keep_a_manager=True)  # revoked twice: counted down once
    assert counts(owner.key_id) == {"live": 1, "managers": 1} and store.find(second.value) is not None


def test_a_revoked_key_makes_rotates_and_revokes_no_keys_while_its_cached_answer_lets_it_in(store):
    owner = owner_of(store)
    keys = AccountKeys(store)
    admin = keys.create(owner, KeyRequest("admin", ("images", "keys")))
    plugin = keys.create(owner, KeyRequest("plugin", ("images",)))
    keys.revoke(owner, admin.key.key_id)
    actor = Caller(admin.key.key_id, "acme-shoes", CREDITS, ("images", "keys"), owner.key_id)
    for act in (
        lambda: keys.create(actor, KeyRequest("mine", ("images",))),
        lambda: keys.rotate(actor, plugin.key.key_id, 0),
        lambda: keys.revoke(actor, plugin.key.key_id),
    ):
        with pytest.raises(KeyRevoked):
            act()


def test_a_key_name_with_control_characters_and_a_test_key_with_billing_are_refused(store):
    owner = owner_of(store)
    keys = AccountKeys(store)
    for name in ("plugin\\u202egnp.exe", "nul\\x00", " "):
        with pytest.raises(InvalidOption):
            keys.create(owner, KeyRequest(name.encode().decode("unicode_escape"), ("images",)))
    with pytest.raises(InvalidOption):
        keys.create(owner, KeyRequest("sandbox", ("images", "billing"), test=True))


def test_test_keys_have_a_cap_of_their_own_and_never_take_the_live_keys_slots(store):
    owner = owner_of(store)
    keys = AccountKeys(store, keys_per_account=2, test_keys_per_account=2)
    sandboxes = [
        keys.create(owner, KeyRequest(f"sandbox {n}", ("images", "keys"), test=True)) for n in (1, 2)
    ]
    with pytest.raises(TooManyKeys) as refused:
        keys.create(owner, KeyRequest("sandbox 3", ("images",), test=True))
    assert (refused.value.field, refused.value.limit) == ("test", 2)
    keys.create(owner, KeyRequest("plugin", ("images",)))  # the owner's next live key still has its slot
    keys.revoke(owner, sandboxes[0].key.key_id)
    keys.create(owner, KeyRequest("sandbox 3", ("images",), test=True))  # a revoked one frees its place
    tester = Caller(
        sandboxes[1].key.key_id, "acme-shoes", CREDITS, ("images", "keys"), owner.key_id, test=True
    )
    with pytest.raises(TooManyKeys):  # a test key filling the slots fills only the test keys' own
        keys.create(tester, KeyRequest("sandbox 4", ("images",), test=True))
    with pytest.raises(TooManyKeys):
        AccountKeys(store, test_keys_per_account=0).create(owner, KeyRequest("none", ("images",), test=True))


def test_a_monthly_cap_of_zero_lets_no_charge_through_even_in_a_fresh_window(store):
    from alphacut.aws.billing.payments import PaymentRecords

    records = PaymentRecords(TABLE)
    assert records.count("k-fresh", "auto#2026-11", 0) is False
    assert records.count("k-fresh", "auto#2026-11", 0, once_for="crossing-1") is False
    assert (
        records.count("k-fresh", "auto#2026-11", 1) is True
        and records.count("k-fresh", "auto#2026-11", 1) is False
    )
