"""A store's account on the local stack: one balance bought by card and spent by many keys, keys the
store makes and manages itself with scopes, a daily limit per key and test keys, through the real
authorizer and its cache."""

from __future__ import annotations

import csv
import io
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from tests.e2e.test_billing import balance_reaches, stripe_client
from tests.stack_fixtures import Api, credit_key

JPEG = {"Content-Type": "image/jpeg"}
KEY_CACHE_SECONDS = 2  # the stack fixture's KeyCacheSeconds


def made_key(owner: Api, stack, **asked) -> Api:
    answer = owner.post("/v1/keys", json=asked)
    assert answer.status_code == 201, answer.text
    made = answer.json()
    assert (
        made["key"].startswith("ac_test_" if asked.get("test") else "ac_") and made["name"] == asked["name"]
    )
    return Api(stack.url, made["key"], made["key_id"])


def let_in(api: Api, seconds: float = 10.0) -> bool:
    """Whether the key is let in (an authorizer's Deny is cached up to KeyCacheSeconds)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if api.get("/v1/usage").status_code == 200:
            return True
        time.sleep(0.3)
    return False


def refused_within(api: Api, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if api.get("/v1/usage").status_code in (401, 403):
            return True
        time.sleep(0.3)
    return False


def test_an_images_key_spends_the_credits_its_owner_bought_and_is_refused_everything_else(
    stack, admin, stripe_on_stack, small_photo
):
    owner = credit_key(admin, stack, "0")
    plugin = made_key(owner, stack, name="storefront plugin", scopes=["images"])
    bought = owner.post("/v1/billing/credits", json={"credits": 40})
    assert bought.status_code == 200, bought.text
    client = stripe_client(stripe_on_stack)
    client.v1.payment_intents.update(
        bought.json()["payment_intent"], params={"payment_method": "pm_card_visa"}
    )
    client.v1.payment_intents.confirm(bought.json()["payment_intent"])
    assert balance_reaches(owner, 40) == 40
    cut = plugin.post("/v1/cutout", data=small_photo, headers=JPEG)
    assert cut.status_code == 200 and (cut.json()["charge"], cut.json()["remain"]) == (1, 39)
    for method, path in (
        ("POST", "/v1/billing/settings"),
        ("POST", "/v1/billing/credits"),
        ("GET", "/v1/billing/payments"),
        ("POST", "/v1/keys"),
        ("GET", "/v1/keys"),
    ):
        refused = plugin.request(method, path, json={"name": "x", "credits": 40})
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["error"]["code"] == "insufficient_scope"
    for api in (owner, plugin):
        usage = api.get("/v1/usage").json()
        assert (usage["balance"], usage["account_id"]) == (39, owner.key_id)
        assert api.get("/v1.0/account").json()["data"]["attributes"]["credits"]["total"] == 39
    listed = {key["key_id"]: key for key in owner.get("/v1/keys").json()["keys"]}
    assert set(listed) == {owner.key_id, plugin.key_id}
    assert listed[plugin.key_id]["scopes"] == ["images"] and listed[plugin.key_id]["credits_today"] == 1
    assert listed[owner.key_id]["credits_today"] == 0
    statement = owner.get("/v1/billing/statement")  # the store's own, as the operator's says it
    assert statement.status_code == 200 and statement.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(statement.text)))
    line, total = rows[0], rows[-1]
    assert (line["key_id"], line["deliveries"], line["credits_used"], line["card_payments"]) == (
        owner.key_id,
        "1",
        "1",
        "8.00",
    )
    assert total["customer"] == "TOTAL"
    assert plugin.get("/v1/billing/statement").status_code == 403  # images only


def test_a_key_with_a_daily_limit_of_3_delivers_3_of_10_calls_at_once_and_the_accounts_other_key_goes_on(
    stack, admin, small_photo
):
    owner = credit_key(admin, stack, "20")
    limited = made_key(owner, stack, name="back office", scopes=["images"], daily_credit_limit=3)
    with ThreadPoolExecutor(10) as pool:
        answers = list(
            pool.map(lambda _: limited.post("/v1/cutout", data=small_photo, headers=JPEG), range(10))
        )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 3 + [402] * 7, [answer.text[:200] for answer in answers]
    refusals = [answer.json()["error"] for answer in answers if answer.status_code == 402]
    assert {(error["code"], error["field"], error["limit"]) for error in refusals} == {
        ("key_budget_spent", "daily_credit_limit", 3)
    }
    delivered = next(answer for answer in answers if answer.status_code == 200)
    assert '"budget";q=3;w=86400' in delivered.headers["RateLimit-Policy"]
    assert owner.post("/v1/cutout", data=small_photo, headers=JPEG).status_code == 200
    assert owner.get("/v1/usage").json()["balance"] == 20 - 3 - 1
    # a key with a limit holds no keys scope: the keys it made would spend beside its limit
    asked = {"name": "limited admin", "scopes": ["images", "keys"], "daily_credit_limit": 5}
    refused = owner.post("/v1/keys", json=asked)
    assert (refused.status_code, refused.json()["error"]["field"]) == (400, "scopes"), refused.text


def test_a_test_keys_cutout_is_marked_and_free_and_past_its_daily_number_it_is_429(stack, admin, small_photo):
    owner = credit_key(admin, stack, "5")
    sandbox = made_key(owner, stack, name="sandbox", scopes=["images"], test=True)
    live = owner.post("/v1/cutout?return=binary&format=png", data=small_photo, headers=JPEG)
    answers = [
        sandbox.post("/v1/cutout?return=binary&format=png", data=small_photo, headers=JPEG) for _ in range(3)
    ]
    for answer in answers:
        assert answer.status_code == 200 and answer.headers["X-Alphacut-Test"] == "true"
        assert answer.headers["X-Alphacut-Charge"] in ("false", "0")
    marked = np.asarray(Image.open(io.BytesIO(answers[0].content)))[..., 3]
    plain = np.asarray(Image.open(io.BytesIO(live.content)))[..., 3]
    background = plain == 0  # where the live cutout is see-through, the test one shows its mark
    assert background.mean() > 0.3 and (marked[background] > 0).mean() > 0.05
    assert owner.get("/v1/usage").json()["balance"] == 4  # the live cutout only
    past = sandbox.post("/v1/cutout", data=small_photo, headers=JPEG)
    assert past.status_code == 429 and past.headers["X-Alphacut-Test"] == "true", past.text
    assert owner.get("/v1/usage").json()["balance"] == 4
    # a test key with scope keys makes test keys only
    sandbox_admin = made_key(owner, stack, name="sandbox admin", scopes=["images", "keys"], test=True)
    live_from_test = sandbox_admin.post("/v1/keys", json={"name": "live", "scopes": ["images"]})
    assert (live_from_test.status_code, live_from_test.json()["error"]["code"]) == (403, "insufficient_scope")


def test_a_rotated_key_works_through_its_grace_a_revoked_one_is_refused_and_the_last_keys_key_stays(
    stack, admin
):
    owner = credit_key(admin, stack, "1")
    plugin = made_key(owner, stack, name="plugin", scopes=["images"])
    assert let_in(plugin)
    rotated = owner.post(f"/v1/keys/{plugin.key_id}/rotate", json={"grace_seconds": 4})
    assert rotated.status_code == 200, rotated.text
    new = Api(stack.url, rotated.json()["key"], plugin.key_id)
    assert let_in(new) and plugin.get("/v1/usage").status_code == 200  # the old value, in its grace
    assert refused_within(plugin, 4 + KEY_CACHE_SECONDS + 3)
    secret = owner.get(f"/v1/keys/{plugin.key_id}/callback-secret").json()["callback_secret"]
    assert secret.startswith("cbk_")
    other = credit_key(admin, stack, "1")  # another account's key: not said to exist
    assert other.get(f"/v1/keys/{plugin.key_id}/callback-secret").status_code == 404
    assert other.request("DELETE", f"/v1/keys/{plugin.key_id}").status_code == 404
    revoked = owner.request("DELETE", f"/v1/keys/{plugin.key_id}")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert refused_within(new, KEY_CACHE_SECONDS + 3)
    last = owner.request("DELETE", f"/v1/keys/{owner.key_id}")
    assert (last.status_code, last.json()["error"]["code"]) == (409, "last_keys_key")
    listed = owner.get("/v1/keys").json()["keys"]  # the key revoked today stays in view, as revoked
    assert {key["key_id"]: key["status"] for key in listed} == {
        owner.key_id: "active",
        plugin.key_id: "revoked",
    }


def test_a_key_made_on_v1_keys_is_let_in_at_once_while_reads_are_eventually_consistent(stack, admin):
    owner = credit_key(admin, stack, "1")
    assert let_in(owner)
    with stack.eventual_reads.lagging(3.0):
        made = owner.post("/v1/keys", json={"name": "at once", "scopes": ["images"]}).json()
        answer = Api(stack.url, made["key"], made["key_id"]).get("/v1/usage")  # before 3 s have passed
        eventual = stack.client("dynamodb").get_item(
            TableName=stack.physical["UsageTable"],
            Key={"pk": {"S": f"key#{made['key_id']}"}, "sk": {"S": "-"}},
        )
    assert "Item" not in eventual  # the rule was on: a replica that had not caught up
    assert answer.status_code == 200, answer.text  # the authorizer's read is a consistent one
