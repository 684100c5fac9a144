"""A store's account and its keys (alphacut.aws.account_keys) against moto's DynamoDB: keys made
before accounts become the owners of their own (twice is once), what one key may do to another,
the account's limit of live keys, and a rotation that keeps what others wrote on the key."""

from __future__ import annotations

import boto3
import pytest
from alphacut.aws.account_keys import AccountKeys, KeyRequest
from alphacut.aws.authorizer import Authorizer, Caller
from alphacut.aws.callback_secrets import CallbackSecrets
from alphacut.aws.credits import CreditLedger
from alphacut.aws.keystore import KeyStore
from alphacut.aws.plans import Plan, PlanCatalogue
from alphacut.errors import InsufficientScope, LastKeysKey, NotFound, TooManyKeys
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
    for pk in (f"key#{old.key.key_id}", f"apikey#{store.fingerprint(old.value)}"):  # as written before accounts
        db.update_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": "-"}}, UpdateExpression="REMOVE account")
    ledger = CreditLedger(TABLE)
    ledger.open(old.key.key_id)
    ledger.top_up(old.key.key_id, 7000, reference="before")
    secrets = CallbackSecrets(TABLE, b"master")
    secret = secrets.rotate(old.key.key_id, 0)
    assert store.find(old.value).account_id == old.key.key_id  # absent: its own id, before migrating
    keys = AccountKeys(store)
    assert keys.migrate() == 1 and keys.migrate() == 0
    assert store.get(old.key.key_id).account == old.key.key_id and store.find(old.value).account == old.key.key_id
    assert ledger.balance(old.key.key_id) == 7000 and secrets.secret(old.key.key_id) == secret
    assert [key.key_id for key in keys.list(old.key.key_id)] == [old.key.key_id]


def test_a_key_makes_only_keys_with_no_more_power_than_its_own(store):
    owner = owner_of(store)
    keys = AccountKeys(store)
    plugin = keys.create(owner, KeyRequest("plugin admin", ("images", "keys"), daily_limit=5000))
    actor = Caller(plugin.key.key_id, "acme-shoes", CREDITS, ("images", "keys"), owner.key_id, daily_limit=5000)
    with pytest.raises(InsufficientScope):
        keys.create(actor, KeyRequest("billing", ("images", "billing"), daily_limit=1000))
    with pytest.raises(InsufficientScope):
        keys.create(actor, KeyRequest("no limit", ("images",)))
    with pytest.raises(InsufficientScope):  # nor take over the owner's key (its value, or revoke it)
        keys.rotate(actor, owner.key_id, 0)
    with pytest.raises(InsufficientScope):
        keys.revoke(actor, owner.key_id)
    kept = keys.create(actor, KeyRequest("small", ("images",), daily_limit=2000))
    assert {key.key_id for key in keys.list(owner.key_id)} == {owner.key_id, plugin.key.key_id, kept.key.key_id}
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
