"""Billing on the local stack with localstripe as Stripe: a store buys credits and localstripe's
own signed webhook, through the gateway, credits them once; a threshold crossed by calls at once
buys the automatic top-up once and tells the store once, signed with its key's secret."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import stripe
from alphacut.callbacks import key_secret, verify
from alphacut_dev.local.stack import STACK_NAME

from tests.localstripe_server import SECRET_KEY, WebhookReceiver
from tests.stack_fixtures import IMAGE_HOST, cli_env, credit_key

ALPHACUT = Path(sys.executable).with_name("alphacut")


def stripe_client(server) -> stripe.StripeClient:
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": server.api})


def balance_reaches(store, credits: float, timeout: float = 30.0) -> float:
    """The key's balance once it is ``credits`` (the webhook lands about a second after the payment)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = store.get("/v1/billing/payments").json()["balance"]
        if seen == credits or time.monotonic() > deadline:
            return seen
        time.sleep(0.3)


def delivery_of(server, kind: str, intent: str, timeout: float = 15.0):
    """localstripe's signed delivery of ``kind`` for ``intent`` (its copy: the bytes it sent the stack)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for delivery in server.copies.received:
            event = json.loads(delivery.body)
            if event["type"] == kind and event["data"]["object"]["id"] == intent:
                return delivery
        time.sleep(0.1)
    raise AssertionError(f"no {kind} for {intent}")


def test_a_store_buys_40_credits_and_localstripes_webhook_credits_exactly_40(
    stack, admin, stripe_on_stack, tmp_path
):
    store = credit_key(admin, stack, "0")
    bought = store.post("/v1/billing/credits", json={"credits": 40})
    assert bought.status_code == 200, bought.text
    intent = bought.json()["payment_intent"]
    client = stripe_client(stripe_on_stack)  # what the page's Stripe.js does: the card, then confirm
    client.v1.payment_intents.update(intent, params={"payment_method": "pm_card_visa"})
    client.v1.payment_intents.confirm(intent)
    assert balance_reaches(store, 40) == 40
    time.sleep(1.5)  # anything Stripe would send twice has had its time
    payments = store.get("/v1/billing/payments").json()
    assert payments["balance"] == 40
    assert [(p["payment"], p["state"]) for p in payments["payments"]] == [(intent, "succeeded")]
    forged = stack_post_unsigned(stack)
    assert (forged.status_code, forged.json()["error"]["code"]) == (400, "invalid_signature")
    # the same success replayed through the gateway, exactly as localstripe signed it: nothing added
    success = delivery_of(stripe_on_stack, "payment_intent.succeeded", intent)
    replayed = requests.post(
        f"{stack.url}/v1/billing/stripe",
        data=success.body,
        headers={"Stripe-Signature": success.headers["Stripe-Signature"], "Content-Type": "application/json"},
        timeout=30,
    )
    assert (replayed.status_code, replayed.json()["done"]) == (200, "already credited")
    # a card whose charge is declined adds nothing
    declined = store.post("/v1/billing/credits", json={"credits": 40}).json()["payment_intent"]
    client.v1.payment_intents.update(declined, params={"payment_method": "pm_card_chargeCustomerFail"})
    with pytest.raises(stripe.CardError):
        client.v1.payment_intents.confirm(declined)
    delivery_of(stripe_on_stack, "payment_intent.payment_failed", declined)
    time.sleep(0.5)  # the stack's copy of it lands beside this one
    assert store.get("/v1/billing/payments").json()["balance"] == 40
    # the operator refunds the first payment: its 40 unspent credits are taken back
    environment = {**cli_env(stack), **stripe_on_stack.settings}
    refunded = subprocess.run(
        [str(ALPHACUT), "billing", "--stack", STACK_NAME, "refund", "--payment", intent],
        env=environment, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert refunded.returncode == 0, refunded.stderr
    assert "40 credits taken back, 0 already spent stay owed" in refunded.stdout
    states = {p["payment"]: p["state"] for p in store.get("/v1/billing/payments").json()["payments"]}
    assert states == {intent: "refunded", declined: "failed"}
    assert store.get("/v1/billing/payments").json()["balance"] == 0


def test_junk_posts_to_the_webhook_from_other_addresses_never_spend_its_throttle_and_stripes_event_lands(
    stack, admin, stripe_on_stack
):
    """WAF blocks the webhook's route from every address but Stripe's (here the stack's own machine,
    127.0.0.1) before the route's method throttle, one bucket for every caller, is spent: with the
    bucket at 1 a second, junk from 127.0.0.2 at 20 a second all the while, a purchase's event still
    credits at once (without the rule the junk spent the bucket and Stripe's delivery met a 429)."""
    from alphacut_dev.local.gateway import TokenBucket

    from tests.stack_fixtures import request_from

    route = ("Api", "POST", "/v1/billing/stripe")
    saved = stack.method_throttles.buckets[route]
    stack.method_throttles.buckets[route] = TokenBucket(1.0, 1)
    answers: list[int] = []
    stop = False

    def junk() -> None:
        while not stop:
            body = b'{"type": "payment_intent.succeeded"}'
            answers.append(request_from("127.0.0.2", "POST", f"{stack.url}/v1/billing/stripe", body)[0])
            time.sleep(0.05)

    store = credit_key(admin, stack, "0")
    with ThreadPoolExecutor(1) as pool:
        flooding = pool.submit(junk)
        try:
            time.sleep(0.5)
            intent = store.post("/v1/billing/credits", json={"credits": 40}).json()["payment_intent"]
            client = stripe_client(stripe_on_stack)
            client.v1.payment_intents.update(intent, params={"payment_method": "pm_card_visa"})
            client.v1.payment_intents.confirm(intent)
            assert balance_reaches(store, 40, timeout=10) == 40
        finally:
            stop = True
            flooding.result()
            stack.method_throttles.buckets[route] = saved
    assert len(answers) >= 10 and set(answers) == {403}, answers  # WAF's, none reached the route


def stack_post_unsigned(stack):
    body = {"type": "payment_intent.succeeded", "data": {"object": {"id": "pi_forged", "metadata": {}}}}
    return requests.post(
        f"{stack.url}/v1/billing/stripe", json=body, headers={"Stripe-Signature": "t=1,v1=00"}, timeout=30
    )


def test_calls_crossing_the_threshold_at_once_buy_the_top_up_once_and_tell_the_store_once(
    stack, admin, stripe_on_stack, small_photo
):
    store = credit_key(admin, stack, "4")
    client = stripe_client(stripe_on_stack)
    # the card saved as the page saves it: a SetupIntent confirmed with the card, then reported
    setup = store.post("/v1/billing/card", json={}).json()
    client.v1.setup_intents.confirm(setup["setup_intent"], params={"payment_method": "pm_card_visa"})
    assert (
        store.post("/v1/billing/card", json={"setup_intent": setup["setup_intent"]}).json()["card_saved"]
        is True
    )
    receiver = WebhookReceiver(host=IMAGE_HOST)
    try:
        settings = store.post(
            "/v1/billing/settings",
            json={"low_balance": 3, "auto_top_up": "starter", "notify_url": receiver.url},
        )
        assert settings.status_code == 200, settings.text
        assert (settings.json()["low_balance"], settings.json()["card_saved"]) == (3, True)

        def cutout(_):
            return store.post(
                "/v1/cutout", data=small_photo, headers={"Content-Type": "image/jpeg"}
            ).status_code

        with ThreadPoolExecutor(4) as pool:  # four calls of a credit each, at once
            assert list(pool.map(cutout, range(4))) == [200] * 4
        assert balance_reaches(store, 100, timeout=60) == 100  # 4 - 4 + the starter pack's 100
        receiver.wait_for(1)
        time.sleep(2)  # a second notice or purchase would have come by now
    finally:
        receiver.close()
    assert len(receiver.received) == 1
    (notice,) = receiver.received
    master = stack.client("secretsmanager").get_secret_value(SecretId=stack.physical["KeyCallbackSecret"])
    secret = key_secret(master["SecretString"].encode(), store.key_id)
    assert verify(secret.encode(), notice.body, notice.headers)
    body = json.loads(notice.body)
    assert (body["type"], body["key_id"], body["auto_top_up"]["state"]) == (
        "balance.low",
        store.key_id,
        "succeeded",
    )
    payments = store.get("/v1/billing/payments").json()["payments"]
    assert [(p["reason"], p["credits"], p["state"]) for p in payments] == [("auto", 100, "succeeded")]
    intents = [pi.to_dict() for pi in client.v1.payment_intents.list().data]
    bought = [pi for pi in intents if pi["metadata"].get("key_id") == store.key_id]
    assert len(bought) == 1


# what no JSON Schema of the document can say of billing: the operator's ranges (deployment settings;
# the purchase's raised to Stripe's minimum charge), what Stripe knows (its signature over the
# webhook's body, a SetupIntent's existence) and the rules of a mailbox (one per inbox, no look-alike
# characters): a schema-valid request that breaks one is a 400 naming it
BILLING_UNSAYABLE = (
    "must be from",
    "does not match this body and the webhook secret",
    "must be an email address",
    "the local part of an email address",
    "top-ups a month, from 0 to",  # MaxAutoTopUpsPerMonth, a deployment's own (31 by default)
    "not a card set up for this key",  # a SetupIntent id of the pattern that Stripe does not know
)


@pytest.mark.slow
def test_schemathesis_finds_no_failure_on_the_billing_and_sign_up_routes(
    stack, admin, stripe_on_stack, tmp_path
):
    from tests.integration.test_openapi_tools import UNSAYABLE, found_failures, start_schemathesis

    key = credit_key(admin, stack, "100")
    document = tmp_path / "native.json"
    document.write_text(key.get("/v1/openapi.json").text)
    run = start_schemathesis(
        "native",
        document,
        stack.url,
        key.key,
        tmp_path,
        paths=("--include-path-regex", "^/v1/(billing|signup)"),
    )
    _, printed = run.finish()
    failures = found_failures(tmp_path / "junit.xml")
    rules = UNSAYABLE + BILLING_UNSAYABLE
    unsayable = [f for f in failures if f.codes == {"ST202"} and any(rule in f.answer for rule in rules)]
    assert [f for f in failures if f not in unsayable] == [], printed
