"""Stripe's events applied by the service's own record of each payment, in any order: the handler
in process against localstripe (the PaymentIntents are real), the events signed with the SDK's
own helper where localstripe sends none or where a stranger would forge one's contents."""

from __future__ import annotations

import json
import uuid

import pytest
from alphacut.aws.credits import CreditLedger
from alphacut.aws.keystore import KeyStore
from alphacut.aws.payments import PaymentRecords
from alphacut.errors import InsufficientCredits

from tests.api.conftest import CREDITS_PLAN, KEY_PLANS, USAGE_TABLE, answer_json, call
from tests.api.test_billing import (  # noqa: F401 - the billing fixtures, shared
    MILLI,
    balance,
    billing,
    buy,
    receiver,
    signed,
    store_key,
    stripe_server,
    webhook,
)


def deliver(handler, kind: str, obj: dict) -> dict:
    """A Stripe event of ``kind`` about ``obj``, correctly signed: 200 and what was done."""
    body, signature = signed({"id": f"evt_{uuid.uuid4().hex[:14]}", "type": kind, "data": {"object": obj}})
    answer = webhook(handler, body, signature)
    assert answer["statusCode"] == 200, answer_json(answer)
    return answer_json(answer)


def success(intent: str, amount: int = 800, **metadata) -> dict:
    return {
        "id": intent,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount,
        "currency": "usd",
        "status": "succeeded",
        "metadata": metadata,
    }


def refund(intent: str, refunded: int) -> dict:
    return {
        "id": f"ch_{intent}",
        "object": "charge",
        "payment_intent": intent,
        "amount": 800,
        "amount_refunded": refunded,
    }


def dispute(intent: str, amount: int = 800, status: str = "needs_response") -> dict:
    return {
        "id": f"dp_{intent}",
        "object": "dispute",
        "payment_intent": intent,
        "amount": amount,
        "status": status,
    }


def state(key_id: str, intent: str) -> str:
    return PaymentRecords(USAGE_TABLE).payment(key_id, intent).state


def test_a_payment_intent_the_service_never_made_credits_nothing_whatever_its_metadata_says(
    handler, store_key
):
    done = deliver(
        handler, "payment_intent.succeeded", success("pi_stranger", 250, key_id=store_key, credits="105000")
    )
    assert done["done"].startswith("unmatched") and balance(store_key) == 0


def test_metadata_naming_another_key_or_other_credits_is_not_read(handler, store_key, billing):
    other = f"store-{uuid.uuid4().hex[:8]}"
    KEY_PLANS[other] = CREDITS_PLAN
    CreditLedger(USAGE_TABLE).open(other)
    intent = buy(handler, store_key, credits=40)["payment_intent"]
    done = deliver(handler, "payment_intent.succeeded", success(intent, key_id=other, credits="105000"))
    assert done["done"] == "credited 40"
    assert (balance(store_key), balance(other)) == (40 * MILLI, 0)  # the record's key, the record's credits


def test_a_payment_received_short_of_its_record_credits_nothing(handler, store_key):
    intent = buy(handler, store_key, credits=40)["payment_intent"]
    short = {**success(intent), "amount_received": 250}
    assert deliver(handler, "payment_intent.succeeded", short)["done"].startswith("unmatched")
    euros = {**success(intent), "currency": "eur"}
    assert deliver(handler, "payment_intent.succeeded", euros)["done"].startswith("unmatched")
    assert balance(store_key) == 0 and state(store_key, intent) == "created"


def test_a_dispute_before_the_success_leaves_no_spendable_credits_and_the_payment_disputed(
    handler, store_key
):
    intent = buy(handler, store_key, credits=40)["payment_intent"]
    deliver(handler, "charge.dispute.created", dispute(intent))
    done = deliver(handler, "payment_intent.succeeded", success(intent))
    assert done["done"] == "already credited"
    assert balance(store_key) == 0 and state(store_key, intent) == "disputed"


def test_a_dispute_takes_the_disputed_credits_back_and_a_won_one_gives_them_again(handler, store_key):
    intent = buy(handler, store_key, credits=40)["payment_intent"]
    deliver(handler, "payment_intent.succeeded", success(intent))
    deliver(handler, "charge.dispute.created", dispute(intent, 400))  # half the payment disputed
    assert balance(store_key) == 20 * MILLI
    deliver(handler, "charge.dispute.created", dispute(intent, 400))  # repeated: nothing more
    assert balance(store_key) == 20 * MILLI
    done = deliver(handler, "charge.dispute.closed", dispute(intent, 400, "won"))
    assert done["done"] == "won: given back 20" and balance(store_key) == 40 * MILLI
    deliver(handler, "charge.dispute.closed", dispute(intent, 400, "won"))
    deliver(handler, "charge.dispute.created", dispute(intent, 400))  # a stale copy after the close
    assert balance(store_key) == 40 * MILLI and state(store_key, intent) == "won"


def test_a_late_failure_never_undoes_a_success(handler, store_key):
    intent = buy(handler, store_key, credits=40)["payment_intent"]
    deliver(handler, "payment_intent.succeeded", success(intent))
    late = {
        **success(intent),
        "status": "requires_payment_method",
        "last_payment_error": {"message": "declined"},
    }
    assert deliver(handler, "payment_intent.payment_failed", late)["done"] == "already past failed"
    assert state(store_key, intent) == "succeeded" and balance(store_key) == 40 * MILLI


def test_a_dispute_for_a_revoked_keys_payment_is_recorded_and_its_credits_taken(handler, billing):
    keys = KeyStore(USAGE_TABLE, billing["secret"])
    made = next(iter(keys.create_many([("revoked store", "credits")])))
    key_id = made.key.key_id
    KEY_PLANS[key_id] = CREDITS_PLAN
    CreditLedger(USAGE_TABLE).open(key_id)
    intent = buy(handler, key_id, credits=40)["payment_intent"]
    deliver(handler, "payment_intent.succeeded", success(intent))
    keys.revoke(key_id)
    done = deliver(handler, "charge.dispute.created", dispute(intent))
    assert done["done"] == f"taken back 40; key {key_id} already revoked"
    assert state(key_id, intent) == "disputed" and balance(key_id) == 0


def test_partial_refunds_in_any_order_take_back_their_share_once(handler, store_key):
    intent = buy(handler, store_key, credits=40)["payment_intent"]
    deliver(handler, "charge.refunded", refund(intent, 600))  # the later refund first: 30 credits
    deliver(handler, "payment_intent.succeeded", success(intent))
    deliver(handler, "charge.refunded", refund(intent, 200))  # the earlier one, late: nothing more
    assert balance(store_key) == 10 * MILLI and state(store_key, intent) == "refunded"
    payments = answer_json(call(handler, "GET", "/v1/billing/payments", key_id=store_key))["payments"]
    assert (payments[0]["refunded_credits"], payments[0]["owed_credits"]) == (30, 0)


def test_a_refund_while_credits_are_held_leaves_nothing_spendable_that_was_not_paid_for(handler, store_key):
    ledger = CreditLedger(USAGE_TABLE)
    intent = buy(handler, store_key, credits=40)["payment_intent"]
    deliver(handler, "payment_intent.succeeded", success(intent))
    ledger.reserve(store_key, "a-task", 30 * MILLI, seconds=600)  # 30 held by a task
    deliver(handler, "charge.refunded", refund(intent, 800))
    assert balance(store_key) == -30 * MILLI  # owed: the held 30 pay it if they come back
    with pytest.raises(InsufficientCredits):
        ledger.reserve(store_key, "another-call", 1 * MILLI, seconds=90)
    assert ledger.release(store_key, "a-task")  # the task failed: its hold comes back
    assert balance(store_key) == 0  # to what was owed, not to the store


def test_a_refund_never_arms_the_low_balance_threshold_again(handler, store_key):
    ledger = CreditLedger(USAGE_TABLE)
    intent = buy(handler, store_key, credits=40)["payment_intent"]
    deliver(handler, "payment_intent.succeeded", success(intent))
    ledger.set_low_balance(store_key, 50 * MILLI)
    assert ledger.claim_low_balance(store_key) == 1  # crossed: told once, disarmed
    deliver(handler, "charge.refunded", refund(intent, 800))
    assert ledger.claim_low_balance(store_key) is None  # the next crossing buys nothing


def test_events_of_one_payment_delivered_at_once_move_its_credits_once(handler, store_key):
    from concurrent.futures import ThreadPoolExecutor

    intent = buy(handler, store_key, credits=40)["payment_intent"]
    kinds = [
        ("payment_intent.succeeded", success(intent)),
        ("charge.refunded", refund(intent, 400)),
        ("charge.dispute.created", dispute(intent, 400)),
    ] * 3
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda pair: deliver(handler, *pair), kinds))
    assert balance(store_key) == 0  # 40 in, 20 refunded, the other 20 disputed: each once
    assert state(store_key, intent) == "disputed"
    payment = PaymentRecords(USAGE_TABLE).payment(store_key, intent)
    assert (payment.credited, payment.refund_taken, payment.dispute_taken) == (
        40 * MILLI,
        20 * MILLI,
        20 * MILLI,
    )


def test_the_payments_answer_says_what_refunds_and_disputes_took(handler, store_key):
    intent = buy(handler, store_key, credits=40)["payment_intent"]
    deliver(handler, "payment_intent.succeeded", success(intent))
    CreditLedger(USAGE_TABLE).reserve(store_key, "spent", 35 * MILLI, seconds=90)
    deliver(handler, "charge.refunded", refund(intent, 800))
    payment = answer_json(call(handler, "GET", "/v1/billing/payments", key_id=store_key))["payments"][0]
    assert (payment["state"], payment["refunded_credits"], payment["owed_credits"]) == ("refunded", 40, 35)
    assert json.loads(json.dumps(payment))["disputed_credits"] == 0
