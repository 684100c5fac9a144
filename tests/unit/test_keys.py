"""The service's own keys (alphacut.aws.keys.store), the key authorizer (alphacut.aws.keys.authorizer),
the limits it hands the functions (alphacut.aws.ledger.limits), and the keys admin (alphacut.aws.keys.admin),
against moto's DynamoDB and API Gateway in this process."""

from __future__ import annotations

import csv
import io
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from alphacut.aws.keys.admin import KeyAdmin
from alphacut.aws.keys.authorizer import Authorizer, Caller, whole_api
from alphacut.aws.keys.store import KeyStore
from alphacut.aws.ledger.credits import CreditLedger
from alphacut.aws.ledger.limits import KeyLimits, bucket
from alphacut.aws.ledger.plans import Plan, PlanCatalogue, sync_plans
from alphacut.errors import InvalidOption, NotFound, QuotaExceeded, RateLimited

from tests.unit.moto_table import usage_table

TABLE = "keys-tests"
SECRET = b"a-hashing-key-of-the-stack-for-these-tests"
ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/v1/cutout"
STARTER = Plan("p1", "starter", 3, 2.0, 4)
CREDITS = Plan("p2", "credits", None, 5.0, 10, credit_based=True, model="u2netp")


@pytest.fixture
def aws(monkeypatch):
    with usage_table(monkeypatch, TABLE):
        PlanCatalogue(TABLE).write({"starter": STARTER, "credits": CREDITS})
        yield


def request(value: str | None, arn: str = ARN) -> dict:
    return {"type": "REQUEST", "methodArn": arn, "headers": {"X-Api-Key": value} if value else {}}


def test_a_key_is_kept_only_as_a_keyed_hash_and_its_value_is_shown_once(aws):
    store = KeyStore(TABLE, SECRET)
    made = store.create("acme-shoes", "starter")
    assert made.value.startswith("ac_") and len(made.value) == 43
    items = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    assert made.value not in repr(items)  # nowhere at rest, in any item
    assert {"S": f"apikey#{store.fingerprint(made.value)}"} in [item["pk"] for item in items]
    other_secret = KeyStore(TABLE, b"another-stack's-secret")
    assert other_secret.find(made.value) is None  # a copy of the table opens nothing without it
    found = store.find(made.value)
    assert found is not None and (found.key_id, found.customer, found.plan) == (
        made.key.key_id,
        "acme-shoes",
        "starter",
    )
    other_value = made.value[:-1] + ("y" if made.value.endswith("x") else "x")  # never the value itself
    assert store.find(other_value) is None


def test_the_authorizer_allows_a_known_key_on_the_whole_api_with_its_plan_in_the_context(aws):
    store = KeyStore(TABLE, SECRET)
    made = store.create("acme-shoes", "credits")
    answer = Authorizer(store, PlanCatalogue(TABLE)).authorize(request(made.value))
    statement = answer["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow" and statement["Resource"] == whole_api(ARN)
    assert whole_api(ARN) == "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/*"
    assert answer["principalId"] == made.key.key_id
    context = answer["context"]
    assert all(isinstance(value, str | int | float | bool) for value in context.values())  # flat
    # API Gateway hands the context on stringified: the functions read the same caller back
    stringified = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in context.items()}
    caller = Caller.from_event({"requestContext": {"authorizer": stringified}})
    assert caller == Caller(made.key.key_id, "acme-shoes", CREDITS, account=made.key.key_id)
    assert store.get(made.key.key_id).last_used == time.strftime("%Y-%m-%d", time.gmtime())


def test_an_unknown_or_missing_key_or_a_key_on_a_plan_gone_is_denied(aws):
    store = KeyStore(TABLE, SECRET)
    authorizer = Authorizer(store, PlanCatalogue(TABLE))
    stray = store.create("stray", "platinum")  # on a plan the catalogue does not have
    for value in ("made-up-key-0000000000000000", None, stray.value):
        answer = authorizer.authorize(request(value))
        assert answer["policyDocument"]["Statement"][0]["Effect"] == "Deny" and "context" not in answer


def test_a_plan_added_since_the_catalogue_was_read_is_found_on_a_keys_first_call(aws):
    store = KeyStore(TABLE, SECRET)
    authorizer = Authorizer(store, PlanCatalogue(TABLE))
    authorizer.authorize(request(store.create("a", "starter").value))  # the catalogue, read
    PlanCatalogue(TABLE).write({"starter": STARTER, "credits": CREDITS, "new": Plan("p3", "new", 9, 1.0, 1)})
    answer = authorizer.authorize(request(store.create("b", "new").value))
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow" and answer["context"]["quota"] == 9


def test_a_rotated_key_keeps_its_id_and_the_old_value_works_until_its_grace_ends(aws):
    now = [1_900_000_000.0]
    store = KeyStore(TABLE, SECRET, clock=lambda: now[0])
    made = store.create("acme-shoes", "starter")
    rotated = store.rotate(made.key.key_id, grace_seconds=3600)
    assert rotated.key.key_id == made.key.key_id and rotated.value != made.value
    assert store.find(made.value).key_id == store.find(rotated.value).key_id == made.key.key_id
    now[0] += 3601
    assert store.find(made.value) is None and store.find(rotated.value) is not None
    again = store.rotate(made.key.key_id, grace_seconds=0)  # no grace: the old value is gone at once
    assert store.find(rotated.value) is None and store.find(again.value) is not None
    with pytest.raises(InvalidOption) as too_long:
        store.rotate(made.key.key_id, grace_seconds=365 * 86400)
    assert too_long.value.field == "grace"


def test_a_revoked_key_is_refused_with_every_value_it_had(aws):
    store = KeyStore(TABLE, SECRET)
    made = store.create("acme-shoes", "starter")
    rotated = store.rotate(made.key.key_id, grace_seconds=3600)
    revoked = store.revoke(made.key.key_id)
    assert not revoked.enabled and store.find(made.value) is None and store.find(rotated.value) is None
    assert not store.get(made.key.key_id).enabled
    with pytest.raises(NotFound):
        store.rotate(made.key.key_id, 60)
    with pytest.raises(NotFound):
        store.revoke("k-no-such-key")


def test_the_rate_is_a_token_bucket_a_burst_at_once_then_the_rate(aws):
    now = [1_900_000_000.0]
    limits = KeyLimits(TABLE, clock=lambda: now[0])
    assert bucket(STARTER) == (500, 1500)  # 2 a second: a call each 500 ms, 4 at once
    for _ in range(4):
        limits.admit("k1", STARTER)
    with pytest.raises(RateLimited) as refused:
        limits.admit("k1", STARTER)
    assert refused.value.retry_after == 1 and refused.value.code == "rate_limited"
    limits.admit("k2", STARTER)  # another key: its own bucket
    now[0] += 0.5  # one interval: one more call
    limits.admit("k1", STARTER)
    with pytest.raises(RateLimited):
        limits.admit("k1", STARTER)
    elsewhere = KeyLimits(TABLE, clock=lambda: now[0])  # another container: the same bucket
    with pytest.raises(RateLimited):
        elsewhere.admit("k1", STARTER)
    now[0] += 10  # idle: the bucket is full again
    for _ in range(4):
        elsewhere.admit("k1", STARTER)
    with pytest.raises(RateLimited):
        limits.admit("k1", STARTER)
    limits.admit("k1", Plan("p", "open", None, None))  # no rate of its own: nothing written


def test_over_a_minute_the_rate_lets_in_the_burst_and_rate_times_the_seconds(aws):
    now = [1_900_000_000.0]
    limits = KeyLimits(TABLE, clock=lambda: now[0])
    let_in = 0
    for _ in range(600):  # 10 tries a second for a minute, against 2 a second and bursts of 4
        try:
            limits.admit("steady", STARTER)
            let_in += 1
        except RateLimited:
            pass
        now[0] += 0.1
    assert let_in == 4 + 2 * 60 - 1  # the bucket's exact count (its first token is the burst's)


def test_a_quota_slot_given_back_is_taken_again_and_the_next_day_starts_afresh(aws):
    now = [1_900_000_000.0 - 10]  # ten seconds before 00:00 UTC
    now[0] = (int(now[0]) // 86400 + 1) * 86400 - 10
    limits = KeyLimits(TABLE, clock=lambda: now[0])
    assert [limits.take_slot("k", 2) for _ in range(2)] == [1, 0]
    with pytest.raises(QuotaExceeded) as spent:
        limits.take_slot("k", 2)
    assert (
        spent.value.retry_after == 10
        and spent.value.limit == 2
        and spent.value.resets_at.endswith("00:00:00Z")
    )
    limits.give_back_slot("k", time.strftime("%Y-%m-%d", time.gmtime(now[0])))
    assert limits.taken("k") == 1 and limits.take_slot("k", 2) == 0
    now[0] += 10
    assert limits.taken("k") == 0 and limits.take_slot("k", 2) == 1


def test_a_quota_takes_exactly_its_slots_whatever_arrives_at_once(aws):
    limits = KeyLimits(TABLE)

    def take(_: int) -> bool:
        try:
            limits.take_slot("busy", 25)
            return True
        except QuotaExceeded:
            return False

    with ThreadPoolExecutor(16) as pool:
        taken = list(pool.map(take, range(60)))
    assert taken.count(True) == 25 and limits.taken("busy") == 25


def admin_on(aws_gateway) -> KeyAdmin:
    aws_gateway.create_usage_plan(name="shop-starter", quota={"limit": 3, "period": "DAY"})
    aws_gateway.create_usage_plan(
        name="shop-credits", throttle={"rateLimit": 5.0, "burstLimit": 10}, tags={"billing": "credits"}
    )
    return KeyAdmin("shop", aws_gateway, CreditLedger(TABLE), KeyStore(TABLE, SECRET))


def test_an_import_makes_a_key_a_line_and_credit_accounts_for_credit_plans(aws):
    admin = admin_on(boto3.client("apigateway"))
    rows = [(f"shop-{i}", "credits" if i % 2 else "starter") for i in range(60)]
    made = list(admin.create_many(rows))
    assert [(k.customer, k.plan) for k in made] == rows and len({k.value for k in made}) == 60
    store = admin.store
    assert all(store.find(k.value).key_id == k.id for k in made)
    assert admin.ledger.balance(made[1].id) == 0 and admin.ledger.balance(made[0].id) is None
    assert PlanCatalogue(TABLE).read()["credits"].credit_based  # the authorizer's catalogue, written
    with pytest.raises(InvalidOption) as unknown:
        list(admin.create_many([("x", "platinum")]))
    assert unknown.value.field == "plan" and "credits" in str(unknown.value)


def test_the_cli_imports_csv_and_writes_one_line_a_key_with_the_key_last(aws, monkeypatch, capsys, tmp_path):
    from alphacut import cli

    admin = admin_on(boto3.client("apigateway"))
    monkeypatch.setattr(cli, "_admin", lambda args, needs_table=False: admin)
    source = tmp_path / "shops.csv"
    source.write_text("customer,plan\nacme,starter\nzeta,credits\n")
    assert cli.main(["keys", "import", str(source)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["key_id", "customer", "plan", "key"] and [r[1:3] for r in rows[1:]] == [
        ["acme", "starter"],
        ["zeta", "credits"],
    ]
    assert all(admin.store.find(r[3]).key_id == r[0] for r in rows[1:])
    source.write_text("acme\n")
    assert cli.main(["keys", "import", str(source)]) == 2
    assert "line 1" in capsys.readouterr().err


def test_migrate_keeps_an_api_gateway_keys_id_and_value(aws):
    gateway = boto3.client("apigateway")
    admin = admin_on(gateway)
    plan = admin.plans()["credits"]
    old = gateway.create_api_key(name="old-shop", value="an-old-api-gateway-key-value-0001", enabled=True)
    gateway.create_usage_plan_key(usagePlanId=plan.id, keyId=old["id"], keyType="API_KEY")
    off = gateway.create_api_key(
        name="disabled-shop", value="a-disabled-api-gateway-key-00002", enabled=False
    )
    gateway.create_usage_plan_key(usagePlanId=plan.id, keyId=off["id"], keyType="API_KEY")
    migrated = admin.migrate()
    assert [(k.id, k.customer, k.plan) for k in migrated] == [(old["id"], "old-shop", "credits")]
    assert admin.store.find("an-old-api-gateway-key-value-0001").key_id == old["id"]
    assert admin.store.find("a-disabled-api-gateway-key-00002") is None
    assert admin.ledger.balance(old["id"]) == 0 and admin.migrate() == []


def test_the_sweeps_plan_sync_writes_the_catalogue_only_when_a_plan_changed(aws):
    gateway = boto3.client("apigateway")
    gateway.create_usage_plan(name="shop-free", quota={"limit": 50, "period": "DAY"})
    catalogue = PlanCatalogue(TABLE)
    assert sync_plans(gateway, "shop", catalogue) == 3  # free added, starter and credits gone
    assert set(catalogue.read()) == {"free"} and sync_plans(gateway, "shop", catalogue) == 0


def test_a_quota_call_across_midnight_gives_its_slot_back_to_the_day_it_took_it_from(aws):
    from alphacut.api.credits import QuotaGate
    from alphacut.options import CutoutOptions

    midnight = (1_900_000_000 // 86400 + 1) * 86400
    reads = iter([midnight - 0.001, midnight + 0.001])  # the clock read once a side of 00:00
    now = [midnight - 0.001]
    limits = KeyLimits(TABLE, clock=lambda: next(reads, now[0]))
    gate = QuotaGate(limits, "night", 2)
    gate.reserve_call(CutoutOptions())  # taken on the day that ends
    now[0] = midnight + 1
    assert [limits.take_slot("night", 2) for _ in range(2)] == [1, 0]  # the new day's two
    assert gate.release()  # nothing delivered: given back to the day it was taken from
    with pytest.raises(QuotaExceeded):  # not a third result on the new day
        limits.take_slot("night", 2)


def test_a_keys_scopes_ride_in_the_authorizers_context_and_survive_a_rotation(aws):
    from alphacut.scopes import ALL_SCOPES, IMAGES, USAGE

    store = KeyStore(TABLE, SECRET)
    plugin = store.create("acme-shoes", "credits", scopes=(USAGE, IMAGES))
    authorizer = Authorizer(store, PlanCatalogue(TABLE))
    context = authorizer.authorize(request(plugin.value))["context"]
    assert context["scopes"] == "images usage"  # canonical order, one flat string
    assert Caller.from_event({"requestContext": {"authorizer": context}}).scopes == (IMAGES, USAGE)
    rotated = store.rotate(plugin.key.key_id, grace_seconds=60)
    assert store.find(rotated.value).scopes == store.get(plugin.key.key_id).scopes == (IMAGES, USAGE)
    # a key stored before scopes existed, and an authorizer answer cached from then: every scope
    old = store.create("old-store", "credits")
    boto3.client("dynamodb").update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"apikey#{store.fingerprint(old.value)}"}, "sk": {"S": "-"}},
        UpdateExpression="REMOVE scopes",
    )
    assert store.find(old.value).scopes == ALL_SCOPES
    cached = {k: v for k, v in context.items() if k != "scopes"}
    assert Caller.from_event({"requestContext": {"authorizer": cached}}).scopes == ALL_SCOPES


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ([], "non-empty"),
        (["images", "admin"], "unknown scope 'admin'"),
        ([1], "non-empty"),
        (None, "non-empty"),
    ],
)
def test_a_list_of_scopes_that_is_not_one_is_refused_naming_the_field(given, message):
    from alphacut.scopes import checked_scopes

    with pytest.raises(InvalidOption, match=message) as refused:
        checked_scopes(given)
    assert refused.value.field == "scopes"


def test_the_operator_makes_a_key_with_the_scopes_asked_and_every_scope_by_default(aws, monkeypatch, capsys):
    from alphacut import cli

    admin = admin_on(boto3.client("apigateway"))
    monkeypatch.setattr(cli, "_admin", lambda args, needs_table=False: admin)
    assert cli.main(["keys", "create", "--customer", "acme", "--plan", "credits", "--scopes", "images"]) == 0
    plugin = capsys.readouterr().out
    assert cli.main(["keys", "create", "--customer", "acme", "--plan", "credits"]) == 0
    owner = capsys.readouterr().out
    value = lambda out: out.split("x-api-key: ")[1].split()[0]
    assert admin.store.find(value(plugin)).scopes == ("images",) and "scopes images" in plugin
    assert admin.store.find(value(owner)).scopes == ("images", "usage", "billing", "keys")
    assert cli.main(["keys", "create", "--customer", "acme", "--plan", "credits", "--scopes", "admin"]) == 2
    assert "unknown scope 'admin'" in capsys.readouterr().err
