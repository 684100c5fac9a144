"""What a test key, a revoked key and a key's rate are bounded by (issue 90), through the real
handler with canned authorizer contexts: a test key's empty runs spend its account's unpaid runs, a
revoked key still let in by the authorizer's cache changes and reads no money, a test key sees test
keys and no money, and every keyed answer says what is left of the rate."""

from __future__ import annotations

import dataclasses
import json
import uuid

from alphacut.aws.keys.accounts import AccountKeys, KeyRequest
from alphacut.aws.keys.authorizer import Caller
from alphacut.aws.keys.store import KeyStore

from tests.api.conftest import (
    CREDITS_PLAN,
    KEY_CALLERS,
    KEY_PLANS,
    STARTER,
    USAGE_TABLE,
    answer_json,
    call,
    header,
)
from tests.api.test_routes_in_process import blank_png, post_cutout

JSON = {"Content-Type": "application/json"}


def test_a_test_keys_empty_runs_spend_its_accounts_unpaid_runs_and_close_every_key_of_it(
    handler, monkeypatch
):
    from alphacut.api import services

    owner, sandbox = f"acct-{uuid.uuid4().hex[:8]}", f"sandbox-{uuid.uuid4().hex[:8]}"
    KEY_PLANS[owner] = STARTER
    KEY_CALLERS[sandbox] = Caller(sandbox, "tests", STARTER, ("images",), owner, test=True)
    monkeypatch.setattr(services, "SETTINGS", dataclasses.replace(services.SETTINGS, unpaid_runs_per_day=2))
    for _ in range(2):  # no subject: the model ran, no test result was kept
        answer = post_cutout(handler, sandbox, body=blank_png(), query={"return": "base64"})
        assert answer["statusCode"] == 200 and answer_json(answer)["found"] is False
    for key in (sandbox, owner):  # the account's budget: the owner's key is closed with its test key
        refused = post_cutout(handler, key, query={"return": "base64"})
        assert refused["statusCode"] == 429, answer_json(refused)
        assert answer_json(refused)["error"]["code"] == "unpaid_runs_spent"


def test_an_option_refused_after_the_model_ran_is_an_unpaid_run_and_a_roi_outside_the_photo_runs_none(
    handler, monkeypatch
):
    """A roi off the photo is refused before the model; a padding the target size has no room for
    is known only once the matte is (the canvas follows the subject): that 400 came after a model
    run and spends the account's unpaid runs, so refused calls never run the model for free."""
    from alphacut.api import services
    from alphacut.pipeline import Pipeline

    owner, sandbox = f"acct-{uuid.uuid4().hex[:8]}", f"sandbox-{uuid.uuid4().hex[:8]}"
    KEY_PLANS[owner] = STARTER
    KEY_CALLERS[sandbox] = Caller(sandbox, "tests", STARTER, ("images",), owner, test=True)
    monkeypatch.setattr(services, "SETTINGS", dataclasses.replace(services.SETTINGS, unpaid_runs_per_day=2))
    runs, mattes = [], Pipeline.mattes
    monkeypatch.setattr(Pipeline, "mattes", lambda self, *a, **k: runs.append(1) or mattes(self, *a, **k))
    off_photo = post_cutout(handler, sandbox, query={"roi": "5000px 5000px 6000px 6000px"})
    assert off_photo["statusCode"] == 400 and answer_json(off_photo)["error"]["field"] == "roi"
    assert runs == []  # refused before the model
    for _ in range(2):
        late = post_cutout(
            handler, sandbox, query={"target_width": "40", "target_height": "40", "padding": "30px"}
        )
        assert late["statusCode"] == 400 and answer_json(late)["error"]["field"] == "padding", answer_json(
            late
        )
    assert len(runs) == 2
    refused = post_cutout(handler, owner)
    assert refused["statusCode"] == 429 and answer_json(refused)["error"]["code"] == "unpaid_runs_spent"


def _account(billing) -> tuple[AccountKeys, Caller]:
    store = KeyStore(USAGE_TABLE, billing["secret"])
    made = store.create(f"store-{uuid.uuid4().hex[:8]}", "credits")
    owner = Caller(made.key.key_id, made.key.customer, CREDITS_PLAN, account=made.key.key_id)
    KEY_CALLERS[owner.key_id] = owner
    return AccountKeys(store), owner


def test_a_revoked_key_still_let_in_by_the_cache_changes_and_reads_no_money(handler, billing):
    keys, owner = _account(billing)
    clerk = keys.create(owner, KeyRequest("back office", ("images", "usage", "billing", "keys")))
    KEY_CALLERS[clerk.key.key_id] = dataclasses.replace(owner, key_id=clerk.key.key_id)
    keys.revoke(owner, clerk.key.key_id)  # API Gateway's cache still lets its value in for a while
    for method, path, body in (
        ("POST", "/v1/billing/settings", {"notify_url": "https://attacker.example/hook"}),
        ("POST", "/v1/billing/credits", {"credits": 40}),
        ("GET", "/v1/billing/payments", None),
        ("GET", "/v1/billing/statement", None),
    ):
        answer = call(handler, method, path, body=json.dumps(body) if body else b"", headers=JSON,
                      key_id=clerk.key.key_id)  # fmt: skip
        assert answer["statusCode"] == 403 and answer_json(answer)["error"]["code"] == "key_revoked", path
    live = call(handler, "GET", "/v1/billing/payments", key_id=owner.key_id)
    assert live["statusCode"] == 200, answer_json(live)


def test_a_test_key_lists_test_keys_only_and_sees_no_statement_and_no_balance(handler, billing):
    keys, owner = _account(billing)
    keys.create(owner, KeyRequest("plugin", ("images",), daily_limit=5000))
    sandbox = keys.create(owner, KeyRequest("sandbox", ("images", "usage", "keys"), test=True))
    KEY_CALLERS[sandbox.key.key_id] = Caller(
        sandbox.key.key_id, owner.customer, CREDITS_PLAN, ("images", "usage", "keys"), owner.key_id, test=True
    )
    listed = answer_json(call(handler, "GET", "/v1/keys", key_id=sandbox.key.key_id))["keys"]
    assert [key["key_id"] for key in listed] == [sandbox.key.key_id]
    statement = call(handler, "GET", "/v1/billing/statement", key_id=sandbox.key.key_id)
    assert statement["statusCode"] == 403 and answer_json(statement)["error"]["code"] == "insufficient_scope"
    usage = answer_json(call(handler, "GET", "/v1/usage", key_id=sandbox.key.key_id))
    assert (usage["balance"], usage["credit_based"], usage["account_id"]) == (None, False, owner.key_id)
    owners = answer_json(call(handler, "GET", "/v1/keys", key_id=owner.key_id))["keys"]
    assert len(owners) == 3


def test_a_credit_keys_answers_say_what_is_left_of_its_rate(handler):
    key = f"rate-{uuid.uuid4().hex[:8]}"
    # a call each 100 s, bursts of 3: the calls below meet the same bucket however slow the machine
    KEY_PLANS[key] = dataclasses.replace(CREDITS_PLAN, rate_limit=0.01, burst=3)
    lefts = [header(call(handler, "GET", "/v1/usage", key_id=key), "RateLimit") for _ in range(3)]
    assert [left.split(";t=")[0] for left in lefts] == ['"rate";r=2', '"rate";r=1', '"rate";r=0']
    refused = call(handler, "GET", "/v1/usage", key_id=key)
    assert refused["statusCode"] == 429 and header(refused, "RateLimit").startswith('"rate";r=0;t=')


def test_a_key_with_a_daily_limit_mints_no_keys_and_a_revoked_keys_spending_stays_in_the_list(
    handler, billing
):
    from alphacut.aws.ledger.key_spend import KeySpend

    keys, owner = _account(billing)
    plugin = keys.create(owner, KeyRequest("plugin", ("images",), daily_limit=5000))
    KeySpend(USAGE_TABLE).spend(plugin.key.key_id, 2000, limit=5000)  # two credits spent today
    keys.revoke(owner, plugin.key.key_id)
    listed = {
        key["key_id"]: key
        for key in answer_json(call(handler, "GET", "/v1/keys", key_id=owner.key_id))["keys"]
    }
    assert (listed[plugin.key.key_id]["status"], listed[plugin.key.key_id]["credits_today"]) == ("revoked", 2)
    # a limited key that holds keys (made before the rule) mints nothing: its keys would spend beside it
    old = f"limited-{uuid.uuid4().hex[:8]}"
    KEY_CALLERS[old] = Caller(
        old, owner.customer, CREDITS_PLAN, ("images", "keys"), owner.key_id, daily_limit=1000
    )
    minted = call(handler, "POST", "/v1/keys", body=json.dumps({"name": "sibling", "scopes": ["images"],
                  "daily_credit_limit": 1}), headers=JSON, key_id=old)  # fmt: skip
    assert minted["statusCode"] == 403 and answer_json(minted)["error"]["code"] == "insufficient_scope"
