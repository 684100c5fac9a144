"""Billing in process: the real handler's billing routes against localstripe (a Stripe server
others wrote, started here), its signed webhooks handed to the handler byte for byte, and the
events localstripe never sends (refunds, disputes) signed with the SDK's own helper.

localstripe's gaps, covered here by signed payloads: no ``charge.refunded`` nor
``charge.dispute.created`` events, no Checkout, no receipt URLs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import os
import random
import time
import uuid
from contextlib import contextmanager
from email import message_from_bytes
from urllib.parse import parse_qs

import boto3
import pytest
import stripe
from alphacut.aws.billing.payments import PaymentRecords
from alphacut.aws.keys.store import KeyStore
from alphacut.aws.ledger.credits import CreditLedger
from alphacut.errors import AccountSuspended
from alphacut.settings import ServiceSettings

from tests.api.billing_fixtures import (
    MILLI,
    balance,
    buy,
    delivered_event,
    pay,
    signed,
    stripe_client,
    webhook,
)
from tests.api.conftest import (
    CREDITS_PLAN,
    USAGE_TABLE,
    LambdaContext,
    answer_json,
    call,
    header,
    rest_event,
)


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


def test_a_refund_takes_back_its_credits_and_what_was_spent_or_held_stays_owed(
    handler, stripe_server, receiver, store_key
):
    from alphacut.api.billing import stripe_events

    bought = buy(handler, store_key, credits=40)
    pay(stripe_server, bought["payment_intent"], "pm_card_visa")
    delivery = delivered_event(receiver, "payment_intent.succeeded", bought["payment_intent"])
    webhook(handler, delivery.body, delivery.headers["Stripe-Signature"])
    CreditLedger(USAGE_TABLE).reserve(store_key, "a-call", 30 * MILLI, seconds=90)  # 30 held by a call

    refunded = stripe_events().refund(bought["payment_intent"])
    assert (refunded["credits_taken_back"], refunded["credits_owed"]) == (40, 30)
    assert balance(store_key) == -30 * MILLI  # owed: the held 30 pay it if they come back
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
                "object": {
                    "id": charge["id"],
                    "object": "charge",
                    "payment_intent": bought["payment_intent"],
                    "amount_refunded": 800,
                }
            },
        }
    )
    assert answer_json(webhook(handler, body, signature))["done"] == "taken back 0"
    assert balance(store_key) == -30 * MILLI
    payment = answer_json(call(handler, "GET", "/v1/billing/payments", key_id=store_key))["payments"][0]
    assert (payment["state"], payment["refunded_credits"], payment["owed_credits"]) == ("refunded", 40, 30)


def test_a_dispute_stops_every_key_of_the_account_whatever_order_they_were_revoked_in_until_reinstated(
    handler, stripe_server, receiver, billing
):
    from alphacut.aws.keys.accounts import AccountKeys, KeyRequest
    from alphacut.aws.keys.authorizer import Caller

    from tests.api.conftest import KEY_CALLERS

    keys = KeyStore(USAGE_TABLE, billing["secret"])
    accounts = AccountKeys(keys)
    made = next(iter(keys.create_many([("disputed store", "credits")])))
    account = made.key.key_id
    owner = Caller(account, "disputed store", CREDITS_PLAN, account=account)
    sibling = accounts.create(owner, KeyRequest("back office", ("images", "usage", "billing", "keys")))
    KEY_CALLERS[sibling.key.key_id] = dataclasses.replace(owner, key_id=sibling.key.key_id)
    CreditLedger(USAGE_TABLE).open(account)
    bought = buy(handler, sibling.key.key_id, credits=40)  # the sibling pays with the card
    pay(stripe_server, bought["payment_intent"], "pm_card_visa")
    accounts.revoke(dataclasses.replace(owner, key_id=sibling.key.key_id), account)  # then drops the owner
    listed = answer_json(call(handler, "GET", "/v1/billing/payments", key_id=sibling.key.key_id))["payments"]
    assert listed[0]["asked_by"] == sibling.key.key_id  # the record says which key asked
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
    assert keys.find(sibling.value) is not None
    done = answer_json(webhook(handler, body, signature))["done"]
    assert done == f"taken back 40; account {account} suspended (1 live keys)"  # credited, then taken back
    assert keys.find(sibling.value) is None  # the authorizer refuses it
    again = call(
        handler, "POST", "/v1/billing/credits", body=json.dumps({"credits": 40}), key_id=sibling.key.key_id
    )  # fmt: skip  (inside the authorizer's cache window)
    assert again["statusCode"] == 403 and answer_json(again)["error"]["code"] == "account_suspended"
    operator = accounts.operator_for(account)  # not checked as a key: the account's mark refuses it
    for actor in (KEY_CALLERS[sibling.key.key_id], operator):
        with pytest.raises(AccountSuspended):  # no new key escapes it either
            accounts.create(actor, KeyRequest("fresh", ("images",)))
    assert accounts.reinstate_account(account) == [sibling.key.key_id]
    assert keys.find(sibling.value).key_id == sibling.key.key_id
    accounts.create(KEY_CALLERS[sibling.key.key_id], KeyRequest("fresh", ("images",)))


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


API_ID = "a1b2c3d4e5"  # what API Gateway puts in requestContext.apiId (a client cannot set it)


def a_source() -> str:
    """A source address of its own (each sign-up test's asks are not another's)."""
    return str(ipaddress.IPv4Address(0x0A000000 + random.randrange(1, 1 << 24)))


def signup_event(body, source: str | None = None, headers: dict | None = None, **context) -> dict:
    event = rest_event(
        "POST", "/v1/signup", body=body if isinstance(body, str) else json.dumps(body), key_id=None,
        headers=headers,
    )  # fmt: skip
    event["requestContext"].update({"apiId": API_ID, **context})
    event["requestContext"]["identity"]["sourceIp"] = source or a_source()
    return event


def signup(handler, email, source: str | None = None) -> dict:
    return handler(signup_event({"email": email}, source), LambdaContext())


def confirm(handler, email, token) -> dict:
    return call(
        handler, "POST", "/v1/signup/confirm", body=json.dumps({"email": email, "token": token}), key_id=None
    )


@contextmanager
def billing_env(**variables: str):
    """The billing function's settings changed, as a stack update does (its adapters made again)."""
    from alphacut.api import services

    with pytest.MonkeyPatch.context() as patch:
        for name, value in variables.items():
            patch.setenv(name, value)
        services.configure(ServiceSettings.from_env())
        yield
    services.configure(ServiceSettings.from_env())


def test_a_confirmed_email_gets_one_key_shown_once_and_no_second_free_one(handler, billing):
    email = f"owner-{uuid.uuid4().hex[:6]}@shop.example"
    assert signup(handler, email)["statusCode"] == 202
    token = mailed_link(billing["mail"], email)
    made = confirm(handler, email, token)
    assert made["statusCode"] == 200
    key = answer_json(made)
    found = KeyStore(USAGE_TABLE, billing["secret"]).find(key["api_key"])
    customer = "signup:" + hashlib.sha256(email.encode()).hexdigest()[:16]
    assert (found.key_id, found.plan, found.customer) == (key["key_id"], "credits", customer)
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


def service_asks_this_hour() -> int:
    hour = time.strftime("%Y-%m-%dT%H", time.gmtime())
    item = (
        boto3.client("dynamodb")
        .get_item(TableName=USAGE_TABLE, Key={"pk": {"S": f"signups#{hour}"}, "sk": {"S": "all"}})
        .get("Item")
    )
    return int(item["count"]["N"]) if item else 0


def test_seventy_asks_from_one_source_leave_another_sources_ask_served(handler, billing):
    """The per-source limit comes before the service's count: one client cannot spend the hour's
    sign-ups of real stores, and its refused asks spend nothing of the service's count."""
    script, store = a_source(), a_source()
    before = service_asks_this_hour()
    answers = [signup(handler, f"farm-{uuid.uuid4().hex[:8]}@shop.example", script) for _ in range(70)]
    served = [a for a in answers if a["statusCode"] == 202]
    refused = [a for a in answers if a["statusCode"] != 202]
    assert 5 <= len(served) <= 10  # 5 an hour (10 only if the hour turned meanwhile)
    assert {a["statusCode"] for a in refused} == {429}
    error = answer_json(refused[-1])["error"]
    assert (error["code"], error["field"], error["limit"]) == ("too_many_signups", "signup", 5)
    assert 0 < int(header(refused[-1], "Retry-After")) <= 3600
    if service_asks_this_hour() >= before:  # the same hour: only the served asks were counted
        assert service_asks_this_hour() - before == len(served)
    assert signup(handler, f"store-{uuid.uuid4().hex[:6]}@shop.example", store)["statusCode"] == 202


def test_asks_past_the_service_ceiling_are_served_and_raise_the_ceiling_metric(handler, billing, monkeypatch):
    from aws_lambda_powertools import Metrics

    emitted = []
    monkeypatch.setattr(Metrics, "add_metric", lambda self, **metric: emitted.append(metric["name"]))
    with billing_env(SIGNUPS_PER_HOUR="1"):
        statuses = [
            signup(handler, f"rush-{uuid.uuid4().hex[:8]}@shop.example")["statusCode"] for _ in range(3)
        ]
    assert statuses == [202, 202, 202]
    assert emitted.count("SignupCeilingReached") >= 2


@pytest.mark.parametrize(("keys_per_email", "expected"), [(1, [200, 409, 409, 409, 409]), (5, [200] * 5)])
def test_five_spellings_of_one_gmail_mailbox_get_one_trial_between_them(
    handler, billing, keys_per_email, expected
):
    tag = uuid.uuid4().hex[:6]
    spellings = [
        f"Some.Body{tag}@gmail.com",
        f"somebody{tag}+shop@gmail.com",
        f"s.o.m.e.body{tag}@googlemail.com",
        f"\uff33omeBody{tag}@gmail.com",  # a fullwidth S
        f"SOMEBODY{tag.upper()}@GMAIL.COM",
    ]
    made, sent = [], []
    with billing_env(TRIAL_CREDITS="25", SIGNUP_KEYS_PER_EMAIL=str(keys_per_email),
                     SIGNUPS_PER_ADDRESS_PER_DAY="10"):  # fmt: skip
        for email in spellings:
            asked = signup(handler, email)
            assert asked["statusCode"] == 202, answer_json(asked)
            sent.append(answer_json(asked)["email"])
            made.append(confirm(handler, email, mailed_link(billing["mail"], sent[-1])))
    # each link went to the address as typed (NFKC, lower case), its tag and dots kept
    assert sent == [
        spellings[0].lower(),
        spellings[1],
        spellings[2],
        spellings[4].lower(),
        spellings[4].lower(),
    ]
    assert [m["statusCode"] for m in made] == expected
    keys = [answer_json(m) for m in made if m["statusCode"] == 200]
    assert [k["credits"] for k in keys] == [25] + [0] * (len(keys) - 1)
    assert sum(balance(k["key_id"]) for k in keys) == 25 * MILLI
    assert all(answer_json(m)["error"]["field"] == "email" for m in made if m["statusCode"] == 409)


def mailed_text(folder, email: str) -> str:
    for path in sorted(folder.glob("*.eml"), reverse=True):
        message = message_from_bytes(path.read_bytes())
        if message["To"] == email:
            return message.get_payload(decode=True).decode()
    raise AssertionError(f"no mail to {email}")


SPOOFED = {
    "Host": "evil.example",
    "X-Forwarded-Proto": "gopher",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Port": "6666",
    "Forwarded": "host=evil.example;proto=gopher",
}


def test_a_spoofed_host_never_reaches_the_mailed_link(handler, billing):
    email = f"victim-{uuid.uuid4().hex[:6]}@shop.example"
    event = signup_event({"email": email}, headers=SPOOFED, domainName="evil.example", path="/evil/v1/signup")
    assert handler(event, LambdaContext())["statusCode"] == 202
    text = mailed_text(billing["mail"], email)
    region = os.environ.get("AWS_REGION") or os.environ["AWS_DEFAULT_REGION"]
    assert f"https://{API_ID}.execute-api.{region}.amazonaws.com/Prod/#signup=" in text
    assert "evil" not in text and "gopher" not in text and "6666" not in text
    # the deployment's own address wins where it is set
    other = f"victim-{uuid.uuid4().hex[:6]}@shop.example"
    with billing_env(PUBLIC_BASE_URL="https://api.store.example/"):
        event = signup_event({"email": other}, headers=SPOOFED, domainName="evil.example")
        assert handler(event, LambdaContext())["statusCode"] == 202
    assert "\nhttps://api.store.example/#signup=" in mailed_text(billing["mail"], other)


def test_a_sign_up_leaves_no_email_in_clear_in_the_table(handler, billing):
    email = f"private.owner-{uuid.uuid4().hex[:6]}@gmail.com"
    assert signup(handler, email)["statusCode"] == 202
    made = confirm(handler, email, mailed_link(billing["mail"], email))
    assert made["statusCode"] == 200
    items = boto3.resource("dynamodb").Table(USAGE_TABLE).scan()["Items"]
    local = email.split("@")[0]
    assert not [item for item in items if local in json.dumps(item, default=str).lower()]
    mailbox = email.replace("private.owner", "privateowner")
    key = KeyStore(USAGE_TABLE, billing["secret"]).get(answer_json(made)["key_id"])
    assert key.customer == "signup:" + hashlib.sha256(mailbox.encode()).hexdigest()[:16]


ODD_VALUES = [5, 1.5, True, False, None, [], ["owner@shop.example"], {}, {"email": "owner@shop.example"},
              "", "x" * 100_000, "a" * 300 + "@shop.example", "\ud800@shop.example", "owner@\ud800.example",
              "owner@shop.example\u0000", "\u043ewner@shop.example"]  # fmt: skip


@pytest.mark.parametrize("value", ODD_VALUES, ids=lambda v: f"{type(v).__name__}-{str(v)[:12]!r}")
@pytest.mark.parametrize(("route", "field"), [("/v1/signup", "email"), ("/v1/signup/confirm", "email"),
                                              ("/v1/signup/confirm", "token")])  # fmt: skip
def test_every_json_type_on_a_sign_up_field_is_a_400_naming_it(handler, billing, route, field, value):
    body = {"email": f"owner-{uuid.uuid4().hex[:6]}@shop.example", "token": "t" * 43, field: value}
    if route == "/v1/signup":
        answer = handler(signup_event(body), LambdaContext())
    else:
        answer = call(handler, "POST", route, body=json.dumps(body), key_id=None)
    assert answer["statusCode"] == 400, answer_json(answer)
    assert answer_json(answer)["error"]["field"] == field


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
    assert records.advance(records.find("pi_late"), "refunded")
    assert not records.advance(records.find("pi_late"), "succeeded")  # never backwards
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
