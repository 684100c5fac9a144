"""The low-balance webhook and its automatic top-up (issue 90, item 10), in process against
localstripe and moto: the webhook is signed with the account's own secret, which a sibling key
still reads once the owner key is revoked; a retried top-up sends exactly what its first attempt
sent, whatever the store changed since (Stripe refuses an idempotency key reused with other
parameters); a top-up that fails for good is told to the store."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import time
import uuid
from pathlib import Path

import boto3
import pytest
from alphacut.aws.billing.low_balance_queue import LowBalance
from alphacut.aws.billing.payments import PaymentRecords
from alphacut.aws.keys.accounts import AccountKeys, KeyRequest
from alphacut.aws.keys.authorizer import Caller
from alphacut.aws.keys.store import KeyStore
from alphacut.billing.low_balance import LAST_RECEIVE, LowBalanceNotices
from alphacut.billing.stripe_account import StripeAccount
from alphacut.callbacks import verify
from alphacut.errors import BillingUnavailable
from alphacut.settings import ServiceSettings
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from tests.api.billing_fixtures import MILLI
from tests.api.conftest import CREDITS_PLAN, KEY_CALLERS, USAGE_TABLE, answer_json, call
from tests.api.test_payments import mails_to, settings_call, with_saved_card
from tests.localstripe_server import WebhookReceiver, free_port

ROOT = Path(__file__).resolve().parents[2]
RECEIVER_HOSTS = ("127.0.0.1",)  # the tests' receiver is on loopback, which callbacks refuse


@pytest.fixture
def callback_master(billing, monkeypatch):
    """The stack's key callback master in moto's Secrets Manager, as the template hands it over."""
    from alphacut.api import services

    arn = boto3.client("secretsmanager").create_secret(
        Name=f"key-callback-master-{uuid.uuid4().hex[:6]}", SecretString="key-callback-master-for-tests"
    )["ARN"]
    monkeypatch.setenv("KEY_CALLBACK_SECRET_ARN", arn)
    services.configure(ServiceSettings.from_env())
    yield arn
    monkeypatch.delenv("KEY_CALLBACK_SECRET_ARN")
    services.configure(ServiceSettings.from_env())


@pytest.fixture
def hooks():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


def notices_with(account: StripeAccount | None = None) -> LowBalanceNotices:
    """The low-balance function's parts (``low_balance_notices``), with another Stripe if given."""
    from alphacut.billing.service import low_balance_notices

    made = low_balance_notices()
    return LowBalanceNotices(
        made.settings, account or made.account, made.records, made.mailbox, made.signing_for, RECEIVER_HOSTS
    )


def test_the_low_balance_webhook_checks_out_with_the_accounts_secret_after_a_sibling_revoked_the_owner(
    handler, billing, callback_master, hooks
):
    store = KeyStore(USAGE_TABLE, billing["secret"])
    made = store.create(f"store-{uuid.uuid4().hex[:8]}", "credits")
    owner = Caller(made.key.key_id, made.key.customer, CREDITS_PLAN, account=made.key.key_id)
    KEY_CALLERS[owner.key_id] = owner
    clerk = AccountKeys(store).create(
        owner, KeyRequest("back office", ("images", "usage", "billing", "keys"))
    )
    clerk_id = clerk.key.key_id
    KEY_CALLERS[clerk_id] = dataclasses.replace(owner, key_id=clerk_id)
    revoked = call(
        handler, "DELETE", f"/v1/keys/{owner.key_id}", key_id=clerk_id, resource="/v1/keys/{key_id}"
    )
    assert revoked["statusCode"] == 200, answer_json(revoked)
    gone = call(handler, "GET", f"/v1/keys/{owner.key_id}/callback-secret", key_id=clerk_id,
                resource="/v1/keys/{key_id}/callback-secret")  # fmt: skip
    assert gone["statusCode"] == 404  # the owner key's secret is out of the store's reach
    answer = call(handler, "GET", "/v1/billing/webhook-secret", key_id=clerk_id)
    assert answer["statusCode"] == 200, answer_json(answer)
    secret = answer_json(answer)["webhook_secret"]
    assert secret.startswith("cba_") and answer_json(answer)["account"] == owner.key_id

    PaymentRecords(USAGE_TABLE).save_profile(owner.key_id, notify_url=hooks.url)
    notices_with().handle(LowBalance(owner.key_id, 1, 10 * MILLI, 20 * MILLI, at=time.time()))
    delivery = hooks.wait_for(1)[0]
    assert verify(secret.encode(), delivery.body, delivery.headers)
    assert json.loads(delivery.body)["type"] == "balance.low"


class AnswerLost(StripeAccount):
    """Stripe itself (localstripe), each request's parameters and idempotency key kept in ``sent``;
    with ``lose``, Stripe's answer to a PaymentIntent is lost on the way back (a timeout after
    Stripe made it), as the SDK would say."""

    def __init__(self, settings, sent: list, lose: bool):
        super().__init__(settings)
        self.sent, self.lose = sent, lose

    def _call(self, method, *args, **kwargs):
        answer = super()._call(method, *args, **kwargs)
        if answer.get("object") == "payment_intent":
            self.sent.append((kwargs.get("params"), (kwargs.get("options") or {}).get("idempotency_key")))
            if self.lose:
                raise BillingUnavailable("Stripe did not answer: the read timed out")
        return answer


def test_a_top_up_retried_after_the_store_changed_its_pack_sends_the_first_attempts_parameters(
    handler, stripe_server, store_key, billing
):
    with_saved_card(stripe_server, store_key)
    settings_call(handler, store_key, auto_top_up="starter", low_balance=20)  # the starter pack: 100
    settings = notices_with().settings
    sent: list = []
    notice = LowBalance(store_key, 1, 10 * MILLI, 20 * MILLI, at=time.time())
    with pytest.raises(BillingUnavailable):  # the queue brings the message back
        notices_with(AnswerLost(settings, sent, lose=True)).handle(notice)
    changed = settings_call(handler, store_key, auto_top_up="store")  # meanwhile: the 500 pack
    assert changed["statusCode"] == 200, answer_json(changed)
    done = notices_with(AnswerLost(settings, sent, lose=False)).handle(notice)  # the retry
    assert (done["auto_top_up"]["credits"], done["auto_top_up"]["state"]) == (100, "succeeded")
    (first, first_key), (retry, retry_key) = sent
    assert first_key == retry_key and retry == first  # what Stripe accepts under one idempotency key
    auto = [p for p in PaymentRecords(USAGE_TABLE).payments(store_key) if p.reason == "auto"]
    assert [(p.credits, p.amount) for p in auto] == [(100, settings.price_of(100))]


class Context:
    """What the low-balance function reads of Lambda's context."""

    function_name = "LowBalanceFunction"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:LowBalanceFunction"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _low_balance_function():
    spec = importlib.util.spec_from_file_location(
        "low_balance_app", ROOT / "functions" / "low_balance" / "app.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _received(notice: LowBalance, receives: int) -> dict:
    """The SQS event of the notice's ``receives``-th delivery."""
    record = {
        "messageId": f"m-{receives}",
        "receiptHandle": f"r-{receives}",
        "body": notice.to_json(),
        "attributes": {"ApproximateReceiveCount": str(receives)},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:low-balance",
        "awsRegion": "us-east-1",
    }
    return {"Records": [record]}


def test_a_top_up_stripe_never_answers_is_told_to_the_store_on_the_queues_last_delivery(
    handler, stripe_server, store_key, billing, hooks, monkeypatch
):
    from alphacut.billing import low_balance

    monkeypatch.setattr(low_balance.metrics, "namespace", "Alphacut")  # the template's Powertools setting
    with_saved_card(stripe_server, store_key)
    settings_call(handler, store_key, auto_top_up="starter", low_balance=20)
    address = f"owner-{uuid.uuid4().hex[:6]}@shop.example"
    PaymentRecords(USAGE_TABLE).save_profile(store_key, notify_url=hooks.url, email=address)
    settings = notices_with().settings
    down = StripeAccount(dataclasses.replace(settings, stripe_api_base=f"http://127.0.0.1:{free_port()}"))
    function = _low_balance_function()
    function.notices = notices_with(down)
    notice = LowBalance(store_key, 1, 10 * MILLI, 20 * MILLI, at=time.time())
    for receives in range(1, LAST_RECEIVE):  # the whole batch failed: the queue delivers it again
        with pytest.raises(BatchProcessingError):
            function.handler(_received(notice, receives), Context())
    assert hooks.received == []
    last = function.handler(_received(notice, LAST_RECEIVE), Context())  # the dead-letter queue is next
    assert last["batchItemFailures"] == []
    told = json.loads(hooks.wait_for(1)[0].body)
    assert (told["auto_top_up"]["state"], told["auto_top_up"]["credits"]) == ("unsure", 100)
    (mail,) = mails_to(billing["mail"], address)
    assert "could not be completed" in mail and "will not be tried again" in mail


def test_a_top_up_stripe_refuses_is_told_to_the_store_at_once(
    handler, stripe_server, store_key, billing, hooks
):
    with_saved_card(stripe_server, store_key)
    settings_call(handler, store_key, auto_top_up="starter", low_balance=20)
    # the saved card is gone from Stripe (detached there): Stripe refuses the request itself
    PaymentRecords(USAGE_TABLE).save_profile(store_key, card="pm_gone0000000000", notify_url=hooks.url)
    done = notices_with().handle(LowBalance(store_key, 1, 10 * MILLI, 20 * MILLI, at=time.time()))
    assert done["auto_top_up"]["state"] == "failed" and "Stripe refused" in done["auto_top_up"]["failure"]
    told = json.loads(hooks.wait_for(1)[0].body)
    assert told["auto_top_up"]["state"] == "failed"
