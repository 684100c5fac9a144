"""Billing in process: the real handler's billing routes against localstripe (a Stripe server
others wrote, started here), its signed webhooks handed to the handler byte for byte, and the
events localstripe never sends (refunds, disputes) signed with the SDK's own helper.

localstripe's gaps, covered here by signed payloads: no ``charge.refunded`` nor
``charge.dispute.created`` events, no Checkout, no receipt URLs.
"""

from __future__ import annotations

import json
import time
import uuid
from email import message_from_bytes
from urllib.parse import parse_qs

import boto3
import pytest
import stripe
from alphacut.aws.credits import CreditLedger
from alphacut.aws.keystore import KeyStore
from alphacut.aws.payments import PaymentRecords
from alphacut.aws.plans import PlanCatalogue
from alphacut.settings import ServiceSettings

from tests.api.conftest import CREDITS_PLAN, KEY_PLANS, USAGE_TABLE, answer_json, call
from tests.localstripe_server import PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET, LocalStripe, WebhookReceiver

MILLI = 1000


@pytest.fixture(scope="module")
def stripe_server():
    with LocalStripe() as server:
        yield server


@pytest.fixture(scope="module")
def receiver(stripe_server):
    hooks = WebhookReceiver()
    stripe_server.send_webhooks_to(hooks.url, WEBHOOK_SECRET)
    yield hooks
    hooks.close()


@pytest.fixture(scope="module")
def billing(handler, stripe_server, tmp_path_factory):
    """The handler's billing pointed at localstripe, mail written to a folder, the key-hash secret in
    moto's Secrets Manager, the credits plan in the plan catalogue."""
    from alphacut.api import services

    mail = tmp_path_factory.mktemp("mail")
    secret_arn = boto3.client("secretsmanager").create_secret(
        Name=f"billing-tests-{uuid.uuid4().hex[:6]}", SecretString="key-hash-secret-for-billing-tests"
    )["ARN"]
    PlanCatalogue(USAGE_TABLE).write({"credits": CREDITS_PLAN})
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "ALPHACUT_STRIPE_API_BASE": stripe_server.api,
            "ALPHACUT_STRIPE_SECRET_KEY": SECRET_KEY,
            "ALPHACUT_STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
            "ALPHACUT_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "ALPHACUT_MAIL_DIR": str(mail),
            "KEY_HASH_SECRET_ARN": secret_arn,
            "SIGNUPS_PER_ADDRESS_PER_DAY": "3",
        }.items():
            patch.setenv(name, value)
        services.configure(ServiceSettings.from_env())
        yield {"mail": mail, "secret": b"key-hash-secret-for-billing-tests"}
    services.configure(ServiceSettings.from_env())


@pytest.fixture
def store_key(billing) -> str:
    """A fresh key on the credits plan, at 0."""
    key_id = f"store-{uuid.uuid4().hex[:8]}"
    KEY_PLANS[key_id] = CREDITS_PLAN
    CreditLedger(USAGE_TABLE).open(key_id)
    return key_id


def stripe_client(stripe_server) -> stripe.StripeClient:
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": stripe_server.api})


def pay(stripe_server, intent_id: str, card: str) -> None:
    """What the page's Stripe.js does with the PaymentIntent: a card attached, then confirmed."""
    client = stripe_client(stripe_server)
    client.v1.payment_intents.update(intent_id, params={"payment_method": card})
    try:
        client.v1.payment_intents.confirm(intent_id)
    except stripe.CardError:
        pass  # a declined card: Stripe says so to Stripe.js, and sends payment_intent.payment_failed


def webhook(handler, body: bytes, signature: str) -> dict:
    return call(
        handler, "POST", "/v1/billing/stripe", body=body, headers={"Stripe-Signature": signature}, key_id=None
    )


def delivered_event(receiver, kind: str, intent_id: str, timeout: float = 15.0):
    """The signed delivery localstripe made of ``kind`` for the PaymentIntent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for delivery in receiver.received:
            event = json.loads(delivery.body)
            if event["type"] == kind and event["data"]["object"]["id"] == intent_id:
                return delivery
        time.sleep(0.05)
    raise AssertionError(f"localstripe sent no {kind} for {intent_id}")


def signed(event: dict) -> tuple[bytes, str]:
    payload = json.dumps(event)
    return payload.encode(), stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET)


def balance(key_id: str) -> int:
    return CreditLedger(USAGE_TABLE).balance(key_id) or 0


def buy(handler, key_id: str, **body) -> dict:
    answer = call(handler, "POST", "/v1/billing/credits", body=json.dumps(body), key_id=key_id,
                  headers={"Content-Type": "application/json"})  # fmt: skip
    assert answer["statusCode"] == 200, answer_json(answer)
    return answer_json(answer)


def test_a_card_payment_credits_exactly_what_was_bought_once_whatever_stripe_repeats(
    handler, stripe_server, receiver, store_key
):
    bought = buy(handler, store_key, credits=40)
    assert (bought["credits"], bought["amount"], bought["currency"]) == (40, 800, "usd")
    assert bought["client_secret"].startswith(bought["payment_intent"])
    pay(stripe_server, bought["payment_intent"], "pm_card_visa")
    delivery = delivered_event(receiver, "payment_intent.succeeded", bought["payment_intent"])

    first = webhook(handler, delivery.body, delivery.headers["Stripe-Signature"])
    assert (first["statusCode"], answer_json(first)["done"]) == (200, "credited 40")
    assert balance(store_key) == 40 * MILLI
    # the same delivery again, and the same success in a new event (a new id, correctly signed)
    again = webhook(handler, delivery.body, delivery.headers["Stripe-Signature"])
    event = json.loads(delivery.body)
    body, signature = signed({**event, "id": f"evt_{uuid.uuid4().hex[:14]}"})
    renewed = webhook(handler, body, signature)
    assert [answer_json(a)["done"] for a in (again, renewed)] == ["already credited"] * 2
    assert balance(store_key) == 40 * MILLI

    payments = answer_json(call(handler, "GET", "/v1/billing/payments", key_id=store_key))
    assert payments["balance"] == 40
    assert [(p["payment"], p["credits"], p["amount"], p["state"]) for p in payments["payments"]] == [
        (bought["payment_intent"], 40, 800, "succeeded")
    ]


def test_a_bad_signature_is_a_400_and_changes_nothing(handler, stripe_server, receiver, store_key):
    bought = buy(handler, store_key, credits=40)
    pay(stripe_server, bought["payment_intent"], "pm_card_visa")
    delivery = delivered_event(receiver, "payment_intent.succeeded", bought["payment_intent"])
    forged_body = delivery.body.replace(b'"amount": 800', b'"amount": 8')
    forged_secret = stripe.WebhookSignature.generate_signature_header(
        delivery.body.decode(), "whsec_not_ours"
    )
    for body, signature in (
        (forged_body, delivery.headers["Stripe-Signature"]),  # the body altered
        (delivery.body, forged_secret),  # signed with another secret
        (delivery.body, ""),  # no signature
    ):
        answer = webhook(handler, body, signature)
        assert answer["statusCode"] == 400
        assert answer_json(answer)["error"]["code"] == "invalid_signature"
    assert balance(store_key) == 0


def test_a_declined_card_adds_nothing_and_the_payment_says_failed(
    handler, stripe_server, receiver, store_key
):
    bought = buy(handler, store_key, credits=40)
    pay(stripe_server, bought["payment_intent"], "pm_card_chargeCustomerFail")
    delivery = delivered_event(receiver, "payment_intent.payment_failed", bought["payment_intent"])
    answer = webhook(handler, delivery.body, delivery.headers["Stripe-Signature"])
    assert answer_json(answer)["done"] == "marked failed"
    assert balance(store_key) == 0
    payments = answer_json(call(handler, "GET", "/v1/billing/payments", key_id=store_key))["payments"]
    assert [(p["state"], bool(p["failure"])) for p in payments] == [("failed", True)]


def test_a_refund_takes_back_the_unspent_credits_and_the_spent_ones_stay_owed(
    handler, stripe_server, receiver, store_key
):
    from alphacut.api.billing import stripe_events

    bought = buy(handler, store_key, credits=40)
    pay(stripe_server, bought["payment_intent"], "pm_card_visa")
    delivery = delivered_event(receiver, "payment_intent.succeeded", bought["payment_intent"])
    webhook(handler, delivery.body, delivery.headers["Stripe-Signature"])
    CreditLedger(USAGE_TABLE).reserve(store_key, "a-call", 30 * MILLI, seconds=90)  # 30 spent

    refunded = stripe_events().refund(bought["payment_intent"])
    assert (refunded["credits_taken_back"], refunded["credits_owed"]) == (10, 30)
    assert balance(store_key) == 0
    charge = stripe_client(stripe_server).v1.payment_intents.retrieve(bought["payment_intent"])[
        "latest_charge"
    ]
    assert charge["refunded"] is True
    # Stripe's charge.refunded event (localstripe sends none: signed here) takes nothing more
    body, signature = signed(
        {
            "id": "evt_refund",
            "type": "charge.refunded",
            "data": {
                "object": {"id": charge["id"], "object": "charge", "payment_intent": bought["payment_intent"]}
            },
        }
    )
    assert answer_json(webhook(handler, body, signature))["done"] == "taken back 10, owed 30"
    assert balance(store_key) == 0
    payment = answer_json(call(handler, "GET", "/v1/billing/payments", key_id=store_key))["payments"][0]
    assert (payment["state"], payment["refunded_credits"], payment["owed_credits"]) == ("refunded", 10, 30)


def test_a_dispute_suspends_the_key_until_the_operator_reinstates_it(
    handler, stripe_server, receiver, billing, store_key
):
    keys = KeyStore(USAGE_TABLE, billing["secret"])
    made = next(iter(keys.create_many([("disputed store", "credits")])))
    KEY_PLANS[made.key.key_id] = CREDITS_PLAN
    CreditLedger(USAGE_TABLE).open(made.key.key_id)
    bought = buy(handler, made.key.key_id, credits=40)
    pay(stripe_server, bought["payment_intent"], "pm_card_visa")
    body, signature = signed(
        {
            "id": "evt_dispute",
            "type": "charge.dispute.created",
            "data": {
                "object": {
                    "id": "dp_1",
                    "object": "dispute",
                    "payment_intent": bought["payment_intent"],
                    "reason": "fraudulent",
                }
            },
        }
    )
    assert keys.find(made.value) is not None
    assert answer_json(webhook(handler, body, signature))["done"] == f"key {made.key.key_id} suspended"
    assert keys.find(made.value) is None
    keys.reinstate(made.key.key_id)
    assert keys.find(made.value).key_id == made.key.key_id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"credits": 2}, "credits"),
        ({"credits": 10**7}, "credits"),
        ({"credits": "40"}, "credits"),
        ({"pack": "huge"}, "pack"),
        ({}, "credits"),
        ({"credits": 40, "saved_card": True}, "saved_card"),
    ],
)
def test_an_amount_the_operator_did_not_allow_is_a_400_naming_the_field(handler, store_key, body, field):
    answer = call(handler, "POST", "/v1/billing/credits", body=json.dumps(body), key_id=store_key)
    assert answer["statusCode"] == 400
    assert answer_json(answer)["error"]["field"] == field


def mailed_link(folder, email: str) -> str:
    """The token of the newest sign-up link mailed to ``email``."""
    for path in sorted(folder.glob("*.eml"), reverse=True):
        message = message_from_bytes(path.read_bytes())
        if message["To"] == email:
            text = message.get_payload(decode=True).decode()
            fragment = text.split("#", 1)[1].split()[0]
            return parse_qs(fragment)["signup"][0]
    raise AssertionError(f"no mail to {email}")


def signup(handler, email: str) -> dict:
    return call(handler, "POST", "/v1/signup", body=json.dumps({"email": email}), key_id=None)


def confirm(handler, email: str, token: str) -> dict:
    return call(
        handler, "POST", "/v1/signup/confirm", body=json.dumps({"email": email, "token": token}), key_id=None
    )


def test_a_confirmed_email_gets_one_key_shown_once_and_no_second_free_one(handler, billing):
    email = f"owner-{uuid.uuid4().hex[:6]}@shop.example"
    assert signup(handler, email)["statusCode"] == 202
    token = mailed_link(billing["mail"], email)
    made = confirm(handler, email, token)
    assert made["statusCode"] == 200
    key = answer_json(made)
    found = KeyStore(USAGE_TABLE, billing["secret"]).find(key["api_key"])
    assert (found.key_id, found.plan, found.customer) == (key["key_id"], "credits", email)
    assert CreditLedger(USAGE_TABLE).balance(key["key_id"]) == 0  # the trial credits: 0 by default
    # the link is spent: the key is never shown again
    assert confirm(handler, email, token)["statusCode"] == 403
    # a second sign-up for the same email gets a link, and no second key
    assert signup(handler, email.upper())["statusCode"] == 202
    second = confirm(handler, email, mailed_link(billing["mail"], email))
    assert (second["statusCode"], answer_json(second)["error"]["code"]) == (409, "conflict")


def test_sign_ups_past_the_address_limit_answer_429(handler, billing):
    email = f"script-{uuid.uuid4().hex[:6]}@shop.example"
    statuses = [signup(handler, email)["statusCode"] for _ in range(4)]
    assert statuses == [202, 202, 202, 429]
    refused = answer_json(signup(handler, email))["error"]
    assert (refused["code"], refused["field"], refused["limit"]) == ("too_many_signups", "email", 3)
    assert signup(handler, "not-an-email")["statusCode"] == 400


def test_the_low_balance_claim_goes_to_one_of_many_calls_crossing_at_once(store_key):
    from concurrent.futures import ThreadPoolExecutor

    ledger = CreditLedger(USAGE_TABLE)
    ledger.top_up(store_key, 6 * MILLI)
    ledger.set_low_balance(store_key, 5 * MILLI)
    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda _: ledger.claim_low_balance(store_key), range(8)))
    assert sorted(claims, key=lambda c: c or 0) == [None] * 7 + [1]
    ledger.rearm_low_balance(store_key)  # a top-up landed
    assert ledger.claim_low_balance(store_key) == 2


def test_the_payments_record_keeps_a_refund_when_a_late_success_arrives(store_key):
    records = PaymentRecords(USAGE_TABLE)
    records.created(store_key, "pi_late", 40, 800, "usd")
    records.mark(store_key, "pi_late", "refunded", refunded_credits=40, owed_credits=0)
    records.mark(store_key, "pi_late", "succeeded")
    assert records.payment(store_key, "pi_late").state == "refunded"


def test_a_deployment_without_stripes_keys_answers_503_naming_the_set_up(handler, store_key):
    from alphacut.api import services

    keys = ("ALPHACUT_STRIPE_SECRET_KEY", "ALPHACUT_STRIPE_PUBLISHABLE_KEY", "ALPHACUT_STRIPE_WEBHOOK_SECRET")
    with pytest.MonkeyPatch.context() as patch:
        arn = boto3.client("secretsmanager").create_secret(
            Name=f"stripe-unset-{uuid.uuid4().hex[:6]}",
            SecretString="not json: the operator has not put the keys",
        )["ARN"]
        for name in keys:
            patch.delenv(name, raising=False)
        patch.setenv("STRIPE_SECRET_ARN", arn)
        services.configure(ServiceSettings.from_env())
        for method, path in (("GET", "/v1/billing/config"), ("POST", "/v1/billing/credits")):
            body = json.dumps({"credits": 40}) if method == "POST" else b""
            answer = call(handler, method, path, body=body, key_id=store_key)
            assert answer["statusCode"] == 503, answer_json(answer)
            assert answer_json(answer)["error"]["code"] == "billing_unavailable"
    services.configure(ServiceSettings.from_env())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"notify_url": "http://169.254.169.254/latest"}, "notify_url"),  # the metadata address
        ({"notify_url": "https://example.com:22/hook"}, "notify_url"),  # a port callbacks never use
        ({"notify_url": "ftp://example.com/hook"}, "notify_url"),
        ({"email": "not an address"}, "email"),
        ({"auto_top_up": "store"}, "auto_top_up"),  # no card saved
        ({"low_balance": -1}, "low_balance"),
    ],
)
def test_a_threshold_setting_no_notice_could_reach_is_a_400_naming_the_field(handler, store_key, body, field):
    answer = call(handler, "POST", "/v1/billing/settings", body=json.dumps(body), key_id=store_key)
    assert (answer["statusCode"], answer_json(answer)["error"]["field"]) == (400, field)
