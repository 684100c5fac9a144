"""The billing tests' shared parts: localstripe (a Stripe server others wrote) started once a
module, its webhooks received, the handler's billing pointed at it, a fresh credits key, and the
helpers that buy, pay and sign events. ``tests/api/conftest.py`` registers the fixtures."""

from __future__ import annotations

import json
import time
import uuid

import boto3
import pytest
import stripe
from alphacut.aws.ledger.credits import CreditLedger
from alphacut.aws.ledger.plans import PlanCatalogue
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
    key_id = real_key(billing, "credits")
    KEY_PLANS[key_id] = CREDITS_PLAN
    CreditLedger(USAGE_TABLE).open(key_id)
    return key_id


def real_key(billing, plan: str) -> str:
    """A key in the key table (the billing routes read that the calling key is live), its owner's id."""
    from alphacut.aws.keys.store import KeyStore

    return KeyStore(USAGE_TABLE, billing["secret"]).create(f"store-{uuid.uuid4().hex[:8]}", plan).key.key_id


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
