"""Stripe's events applied by the service's own record of each payment, in any order: the handler
in process against localstripe (the PaymentIntents are real), the events signed with the SDK's
own helper where localstripe sends none or where a stranger would forge one's contents."""

from __future__ import annotations

import json
import uuid

import pytest
from alphacut.aws.billing.payments import PaymentRecords
from alphacut.aws.keys.store import KeyStore
from alphacut.aws.ledger.credits import CreditLedger
from alphacut.errors import InsufficientCredits

from tests.api.billing_fixtures import MILLI, balance, buy, signed, webhook
from tests.api.conftest import CREDITS_PLAN, KEY_PLANS, USAGE_TABLE, answer_json, call


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
    assert done["done"] == f"taken back 40; account {key_id} suspended (0 live keys)"
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
    ledger.set_low_balance(store_key, 30 * MILLI)  # armed: the balance is above it
    ledger.reserve(store_key, "spent", 15 * MILLI, seconds=600)
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


def settings_call(handler, key_id: str, **body) -> dict:
    return call(handler, "POST", "/v1/billing/settings", body=json.dumps(body), key_id=key_id)


def with_saved_card(stripe_server, key_id: str) -> None:
    """A customer with a card that charges, as the page's SetupIntent leaves them."""
    import stripe

    from tests.localstripe_server import SECRET_KEY

    client = stripe.StripeClient(SECRET_KEY, base_addresses={"api": stripe_server.api})
    customer = client.v1.customers.create(params={"metadata": {"key_id": key_id}})["id"]
    card = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer})["id"]
    PaymentRecords(USAGE_TABLE).save_profile(key_id, customer=customer, card=card)


def buy_with_saved_card(handler, key_id: str, credits: int = 40) -> dict:
    """POST /v1/billing/credits with the saved card, as the page's Buy does."""
    return call(
        handler,
        "POST",
        "/v1/billing/credits",
        body=json.dumps({"credits": credits, "saved_card": True}),
        key_id=key_id,
    )


def test_a_threshold_at_or_above_the_top_up_pack_is_refused(handler, stripe_server, store_key):
    with_saved_card(stripe_server, store_key)
    refused = settings_call(handler, store_key, low_balance=500, auto_top_up="store")  # the pack is 500
    error = answer_json(refused)["error"]
    assert refused["statusCode"] == 400 and (error["field"], error["limit"]) == ("low_balance", 499)
    assert settings_call(handler, store_key, low_balance=499, auto_top_up="store")["statusCode"] == 200
    later = settings_call(handler, store_key, auto_top_up="starter")  # 100: the threshold set is above it
    assert later["statusCode"] == 400 and answer_json(later)["error"]["field"] == "low_balance"


def test_only_a_charged_call_crosses_the_threshold(handler, store_key, monkeypatch):
    from alphacut.api import services

    sent = []
    monkeypatch.setattr(services, "low_balance_queue", lambda: type("Q", (), {"send": sent.append})())
    ledger = CreditLedger(USAGE_TABLE)
    ledger.top_up(store_key, 10 * MILLI)
    ledger.set_low_balance(store_key, 5 * MILLI)  # armed
    ledger.reserve(store_key, "a-task", 7 * MILLI, seconds=600)  # held: the balance 3, below it, armed
    for _ in range(3):  # calls that fail cost nothing and cross nothing
        answer = call(handler, "POST", "/v1/cutout", body=b"not a picture", key_id=store_key,
                      headers={"Content-Type": "image/png"})  # fmt: skip
        assert answer["statusCode"] in (400, 415, 422)
    assert sent == [] and ledger.standing(store_key).armed


def test_sixty_purchase_asks_make_a_handful_of_payment_intents(handler, store_key):
    answers = [
        call(handler, "POST", "/v1/billing/credits", body=json.dumps({"credits": 40}), key_id=store_key)
        for _ in range(12)
    ]
    statuses = [answer["statusCode"] for answer in answers]
    assert statuses == [200] * 5 + [429] * 7
    refused = answer_json(answers[-1])["error"]
    assert (refused["code"], refused["limit"]) == ("too_many_payments", 5)
    assert len(PaymentRecords(USAGE_TABLE).payments(store_key)) == 5  # a PaymentIntent per ask let in


def test_a_key_on_a_quota_plan_cannot_buy_credits(handler, billing):
    from tests.api.billing_fixtures import real_key
    from tests.api.conftest import STARTER

    key_id = real_key(billing, "starter")
    KEY_PLANS[key_id] = STARTER
    answer = call(handler, "POST", "/v1/billing/credits", body=json.dumps({"credits": 40}), key_id=key_id)
    assert answer["statusCode"] == 400 and answer_json(answer)["error"]["field"] == "plan"


def test_a_raised_monthly_cap_applies_next_month_and_a_lowered_one_at_once(handler, store_key):
    view = answer_json(settings_call(handler, store_key, auto_top_up_monthly_cap=1))
    assert (view["auto_top_up_monthly_cap"], view["auto_top_up_monthly_cap_next_month"]) == (1, 1)
    view = answer_json(settings_call(handler, store_key, auto_top_up_monthly_cap=20))
    assert (view["auto_top_up_monthly_cap"], view["auto_top_up_monthly_cap_next_month"]) == (1, 20)


def test_automatic_top_ups_stop_at_the_monthly_cap_each_crossing_counted_once(
    handler, stripe_server, store_key, billing
):
    from alphacut.aws.billing.low_balance_queue import LowBalance
    from alphacut.billing.service import low_balance_notices

    with_saved_card(stripe_server, store_key)
    settings_call(handler, store_key, auto_top_up="starter", low_balance=20, auto_top_up_monthly_cap=2)
    notices = low_balance_notices()
    states = []
    for crossing in (1, 1, 2, 3):  # crossing 1's message delivered twice
        done = notices.handle(LowBalance(store_key, crossing, 10 * MILLI, 20 * MILLI))
        states.append(done["auto_top_up"]["state"])
    assert states[-1] == "capped" and "capped" not in states[:3]
    auto = [p for p in PaymentRecords(USAGE_TABLE).payments(store_key) if p.reason == "auto"]
    assert len(auto) == 2  # one PaymentIntent per crossing, two crossings within the cap


def mails_to(folder, address: str) -> list[str]:
    from email import message_from_bytes

    found = []
    for path in sorted(folder.glob("*.eml")):
        message = message_from_bytes(path.read_bytes())
        if message["To"] == address:
            found.append(message.get_payload(decode=True).decode())
    return found


def test_an_unconfirmed_notice_address_gets_its_confirmation_and_nothing_else(
    handler, stripe_server, store_key, billing, monkeypatch
):
    from alphacut.aws.billing.low_balance_queue import LowBalance
    from alphacut.billing.service import low_balance_notices

    monkeypatch.setenv("PUBLIC_BASE_URL", "https://api.shop.test/prod")  # where mailed links point
    address = f"owner-{uuid.uuid4().hex[:6]}@shop.example"
    view = answer_json(settings_call(handler, store_key, email=address, low_balance=5))
    assert (view["email"], view["email_pending"]) == (None, address)
    notices = low_balance_notices()
    notices.handle(LowBalance(store_key, 1, 3 * MILLI, 5 * MILLI))
    (confirmation,) = mails_to(billing["mail"], address)  # the link, and no notice
    token = confirmation.split("#notices=")[1].split()[0]
    confirmed = call(
        handler, "POST", "/v1/billing/notices/confirm", body=json.dumps({"token": token}), key_id=None
    )
    assert answer_json(confirmed) == {"key_id": store_key, "email": address, "confirmed": True}
    again = call(
        handler, "POST", "/v1/billing/notices/confirm", body=json.dumps({"token": token}), key_id=None
    )
    assert again["statusCode"] == 403  # spent
    notices.handle(LowBalance(store_key, 2, 3 * MILLI, 5 * MILLI))
    notices.handle(LowBalance(store_key, 2, 3 * MILLI, 5 * MILLI))  # the same crossing, delivered twice
    assert len(mails_to(billing["mail"], address)) == 2  # the confirmation, then one notice


def test_a_link_for_an_address_set_again_since_confirms_nothing(handler, store_key, billing, monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://api.shop.test/prod")
    first, second = (f"{name}-{uuid.uuid4().hex[:6]}@shop.example" for name in ("first", "second"))
    settings_call(handler, store_key, email=first)
    settings_call(handler, store_key, email=second)
    (old_link,) = mails_to(billing["mail"], first)
    token = old_link.split("#notices=")[1].split()[0]
    answer = call(
        handler, "POST", "/v1/billing/notices/confirm", body=json.dumps({"token": token}), key_id=None
    )
    assert (
        answer["statusCode"] == 403 and "no longer the one waiting" in answer_json(answer)["error"]["message"]
    )
    view = answer_json(call(handler, "GET", "/v1/billing/settings", key_id=store_key))
    assert (view["email"], view["email_pending"]) == (None, second)


def test_a_key_mails_at_most_its_notices_a_day_whatever_it_sets(handler, store_key, billing, monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://api.shop.test/prod")
    statuses = [
        settings_call(handler, store_key, email=f"victim{n}@elsewhere.example")["statusCode"]
        for n in range(6)
    ]
    assert statuses == [200, 200, 200, 429, 429, 429]  # three mails a day, confirmations included
    refused = answer_json(settings_call(handler, store_key, email="one-more@elsewhere.example"))["error"]
    assert (refused["code"], refused["field"], refused["limit"]) == ("too_many_notices", "email", 3)


ODD_VALUES = [["x"], {"a": 1}, 1.5, -1, True, False, "x" * 5000, "\ud800"]
BILLING_FIELDS = [
    ("/v1/billing/credits", "credits"),
    ("/v1/billing/credits", "pack"),
    ("/v1/billing/credits", "saved_card"),
    ("/v1/billing/card", "setup_intent"),
    ("/v1/billing/settings", "low_balance"),
    ("/v1/billing/settings", "auto_top_up"),
    ("/v1/billing/settings", "auto_top_up_monthly_cap"),
    ("/v1/billing/settings", "notify_url"),
    ("/v1/billing/settings", "email"),
    ("/v1/billing/notices/confirm", "token"),
]


@pytest.mark.parametrize(("route", "field"), BILLING_FIELDS)
def test_every_json_type_on_a_billing_field_is_a_4xx_naming_it(handler, store_key, route, field):
    for value in ODD_VALUES:
        if field == "credits" and value == -1 or field == "saved_card" and isinstance(value, bool):
            continue  # a number of credits out of range, and true: said elsewhere
        body = json.dumps({"credits": 40, field: value} if field == "saved_card" else {field: value})
        key_id = None if route.endswith("/confirm") else store_key
        answer = call(handler, "POST", route, body=body, key_id=key_id)
        status, error = answer["statusCode"], answer_json(answer).get("error") or {}
        assert 400 <= status < 500 and error.get("field") == field, (route, field, value, status, error)


def test_a_monthly_cap_of_nought_with_every_setting_cleared_is_kept(handler, store_key):
    # found by Schemathesis: a 0 was both set and removed in one write (DynamoDB refuses that: 500)
    body = {
        "low_balance": 0,
        "auto_top_up": None,
        "auto_top_up_monthly_cap": 0,
        "notify_url": None,
        "email": "",
    }
    view = answer_json(settings_call(handler, store_key, **body))
    assert (view["auto_top_up_monthly_cap"], view["email"], view["auto_top_up"]) == (0, None, None)


def test_an_inquiry_takes_nothing_and_funds_withdrawn_then_reinstated_move_them_once(handler, store_key):
    intent = buy(handler, store_key, credits=40)["payment_intent"]
    deliver(handler, "payment_intent.succeeded", success(intent))
    inquiry = deliver(handler, "charge.dispute.created", dispute(intent, 800, "warning_needs_response"))
    assert inquiry["done"] == "inquiry: nothing taken" and balance(store_key) == 40 * MILLI
    deliver(handler, "charge.dispute.funds_withdrawn", dispute(intent, 800, "needs_response"))
    deliver(handler, "charge.dispute.created", dispute(intent, 800, "needs_response"))  # the same money
    assert balance(store_key) == 0 and state(store_key, intent) == "disputed"
    deliver(handler, "charge.dispute.funds_reinstated", dispute(intent, 800, "under_review"))
    assert balance(store_key) == 40 * MILLI and state(store_key, intent) == "won"


def test_a_declined_saved_card_leaves_its_payment_recorded_failed(handler, stripe_server, store_key):
    import stripe

    from tests.localstripe_server import SECRET_KEY

    client = stripe.StripeClient(SECRET_KEY, base_addresses={"api": stripe_server.api})
    customer = client.v1.customers.create(params={"metadata": {"key_id": store_key}})["id"]
    card = client.v1.payment_methods.attach("pm_card_chargeCustomerFail", params={"customer": customer})["id"]
    PaymentRecords(USAGE_TABLE).save_profile(store_key, customer=customer, card=card)
    answer = buy_with_saved_card(handler, store_key)
    assert answer["statusCode"] == 402, answer_json(answer)
    payments = PaymentRecords(USAGE_TABLE).payments(store_key)
    assert [(p.state, bool(p.failure)) for p in payments] == [
        ("failed", True)
    ]  # not an unmatched event later


def test_writing_the_threshold_again_never_arms_a_crossing_already_made(handler, store_key):
    ledger = CreditLedger(USAGE_TABLE)
    ledger.top_up(store_key, 10 * MILLI)
    settings_call(handler, store_key, low_balance=5)
    assert ledger.standing(store_key).armed  # the balance is above it
    ledger.reserve(store_key, "spent", 7 * MILLI, seconds=600)
    assert ledger.claim_low_balance(store_key) == 1  # the crossing, told once
    for _ in range(3):  # a leaked key writing it again and again
        settings_call(handler, store_key, low_balance=5)
        assert not ledger.standing(store_key).armed and ledger.claim_low_balance(store_key) is None


def test_the_saved_card_is_charged_at_most_the_largest_pack_and_the_monthly_cap(
    handler, stripe_server, store_key
):
    with_saved_card(stripe_server, store_key)
    settings_call(handler, store_key, auto_top_up_monthly_cap=2)
    huge = buy_with_saved_card(handler, store_key, credits=100000)
    assert huge["statusCode"] == 400 and answer_json(huge)["error"]["limit"] == 2000  # the largest pack
    asks = [buy_with_saved_card(handler, store_key, credits=2000) for _ in range(3)]
    assert [a["statusCode"] for a in asks] == [200, 200, 429]
    assert answer_json(asks[2])["error"]["code"] == "too_many_payments"


def test_a_refund_after_a_dispute_of_the_whole_payment_takes_nothing_more(handler, store_key):
    intent = buy(handler, store_key, credits=40)["payment_intent"]
    deliver(handler, "payment_intent.succeeded", success(intent))
    deliver(handler, "charge.dispute.created", dispute(intent, 800))
    assert deliver(handler, "charge.refunded", refund(intent, 800))["done"] == "taken back 0"
    assert balance(store_key) == 0  # 40 in, 40 out, once


def test_a_settings_write_refused_for_its_mails_changes_nothing(handler, store_key, monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://api.shop.test/prod")
    CreditLedger(USAGE_TABLE).top_up(store_key, 50 * MILLI)
    for number in range(3):
        settings_call(handler, store_key, email=f"a{number}@elsewhere.example")
    refused = settings_call(handler, store_key, email="a9@elsewhere.example", low_balance=7)
    assert refused["statusCode"] == 429
    assert answer_json(call(handler, "GET", "/v1/billing/settings", key_id=store_key))["low_balance"] == 0


@pytest.mark.parametrize(
    "event",
    [
        ["not", "an", "event"],
        {"type": "setup_intent.succeeded", "data": {"object": {"metadata": "x"}}},
        {"type": "charge.refunded", "data": "x"},
    ],
)
def test_a_signed_event_of_an_odd_shape_is_acknowledged_not_a_500(handler, billing, event):
    payload = json.dumps(event)
    import stripe

    from tests.localstripe_server import WEBHOOK_SECRET

    answer = webhook(
        handler, payload.encode(), stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET)
    )
    assert answer["statusCode"] in (200, 400), answer_json(answer)


def test_a_saved_card_charge_that_could_outlive_the_call_is_never_started(handler, stripe_server, store_key):
    # 22 s into API Gateway's 29: a Stripe request may take its whole 8 s timeout, and a charge made
    # after the gateway answered 504 is one the store never hears of
    import time

    import stripe

    from tests.api.conftest import LambdaContext, rest_event
    from tests.localstripe_server import SECRET_KEY

    with_saved_card(stripe_server, store_key)
    late = rest_event(
        "POST", "/v1/billing/credits", body=json.dumps({"credits": 40, "saved_card": True}), key_id=store_key
    )
    late["requestContext"]["requestTimeEpoch"] = int((time.time() - 22) * 1000)
    answer = handler(late, LambdaContext())
    assert answer["statusCode"] == 503 and "too little" in answer_json(answer)["error"]["message"]
    customer = PaymentRecords(USAGE_TABLE).profile(store_key).customer
    client = stripe.StripeClient(SECRET_KEY, base_addresses={"api": stripe_server.api})
    made = [i for i in client.v1.payment_intents.list().to_dict()["data"] if i.get("customer") == customer]
    assert made == [] and PaymentRecords(USAGE_TABLE).payments(store_key) == []
    assert buy_with_saved_card(handler, store_key)["statusCode"] == 200


def test_a_crossing_whose_news_could_not_be_queued_is_told_by_the_next_charged_call(
    handler, store_key, photo_bytes, monkeypatch
):
    # the threshold used to stay disarmed: no notice and no automatic top-up until a manual one
    from alphacut.api import services

    sent, failing = [], [True]

    class Queue:
        def send(self, notice):
            if failing[0]:
                raise ConnectionError("SQS not reached")
            sent.append(notice)

    monkeypatch.setattr(services, "low_balance_queue", Queue)
    ledger = CreditLedger(USAGE_TABLE)
    ledger.top_up(store_key, 10 * MILLI)
    ledger.set_low_balance(store_key, 9_500)  # armed; one cutout (1 credit) crosses it

    def cutout() -> dict:
        return call(handler, "POST", "/v1/cutout", body=photo_bytes, key_id=store_key,
                    headers={"Content-Type": "image/jpeg"})  # fmt: skip

    assert cutout()["statusCode"] == 200  # the call is never the queue's casualty
    assert sent == [] and ledger.standing(store_key).armed  # the crossing given back
    failing[0] = False
    assert cutout()["statusCode"] == 200
    assert [(n.key_id, n.crossing, n.balance) for n in sent] == [(store_key, 2, 8 * MILLI)]
    assert not ledger.standing(store_key).armed


def test_a_notice_mail_ses_refuses_leaves_one_top_up_and_one_webhook_and_is_not_retried(
    handler, stripe_server, store_key, billing
):
    from alphacut.aws.billing.low_balance_queue import LowBalance
    from alphacut.aws.billing.mailbox import Mailbox
    from alphacut.billing.low_balance import LowBalanceNotices
    from alphacut.billing.service import low_balance_notices
    from botocore.exceptions import ClientError

    from tests.localstripe_server import WebhookReceiver

    class RefusingSes(Mailbox):  # SES's answer for an address the sandbox does not mail
        def send(self, to: str, subject: str, text: str) -> str:
            raise ClientError(
                {"Error": {"Code": "MessageRejected", "Message": "Email address is not verified"}},
                "SendEmail",
            )

    hooks = WebhookReceiver()
    try:
        with_saved_card(stripe_server, store_key)
        settings_call(handler, store_key, auto_top_up="starter", low_balance=20)
        PaymentRecords(USAGE_TABLE).save_profile(store_key, email="owner@shop.example", notify_url=hooks.url)
        made = low_balance_notices()
        refusing = RefusingSes("billing@shop.example")
        notices = LowBalanceNotices(
            made.settings, made.account, made.records, refusing, made.signing_for, ("127.0.0.1",)
        )
        notice = LowBalance(store_key, 1, 10 * MILLI, 20 * MILLI)
        first = notices.handle(notice)  # no exception: the queue does not bring it back
        again = notices.handle(notice)  # and were it delivered twice, nothing more happens
        assert first["auto_top_up"]["state"] != "failed" and again["auto_top_up"]["state"] == "bought already"
        auto = [p for p in PaymentRecords(USAGE_TABLE).payments(store_key) if p.reason == "auto"]
        assert len(auto) == 1 and len(hooks.wait_for(1)) == 1
        assert len(hooks.wait_for(2, timeout=1.0)) == 1  # and no second webhook came meanwhile
    finally:
        hooks.close()


class ThrottlingSes:
    """SES's client past the account's sending rate: every send refused ``ThrottlingException``."""

    def send_email(self, **_: object) -> dict:
        from botocore.exceptions import ClientError

        error = {"Error": {"Code": "ThrottlingException", "Message": "Maximum sending rate exceeded."}}
        raise ClientError(error, "SendEmail")  # type: ignore[arg-type]


def test_a_notice_mail_while_ses_throttles_comes_back_with_its_message_and_goes_out_once(
    handler, store_key, billing, monkeypatch
):
    import time

    from alphacut.aws.billing import mailbox
    from alphacut.aws.billing.low_balance_queue import LowBalance
    from alphacut.billing.low_balance import LowBalanceNotices
    from alphacut.billing.service import low_balance_notices
    from alphacut.errors import ServiceBusy

    from tests.localstripe_server import WebhookReceiver

    hooks = WebhookReceiver()
    try:
        PaymentRecords(USAGE_TABLE).save_profile(store_key, email="owner@shop.example", notify_url=hooks.url)
        made = low_balance_notices()

        def notices(box: mailbox.Mailbox) -> LowBalanceNotices:
            return LowBalanceNotices(
                made.settings, made.account, made.records, box, made.signing_for, ("127.0.0.1",)
            )

        notice = LowBalance(store_key, 1, 10 * MILLI, 20 * MILLI)
        before = set(billing["mail"].iterdir())
        monkeypatch.setattr(mailbox, "_sender", ThrottlingSes)
        ses = mailbox.Mailbox("billing@shop.example")  # SES, as on AWS
        with pytest.raises(ServiceBusy) as busy:  # raised: the queue brings the message back
            notices(ses).handle(notice)
        assert busy.value.retry_after == 1
        working = notices(made.mailbox)  # SES takes it now (the tests' mail folder)
        working.handle(notice)
        working.handle(notice)  # were it delivered once more, nothing more is sent
        sent = set(billing["mail"].iterdir()) - before
        assert len(sent) == 1 and "below the 20" in sent.pop().read_text()
        assert len(hooks.wait_for(1)) == 1 and len(hooks.wait_for(2, timeout=1.0)) == 1  # one webhook
        day = time.strftime("%Y-%m-%d", time.gmtime())
        assert PaymentRecords(USAGE_TABLE).counted(store_key, f"mails#{day}") == 1  # one of the day's mails
    finally:
        hooks.close()


def test_a_top_up_retried_a_day_after_an_attempt_that_noted_no_payment_is_never_sent_to_stripe_again(
    handler, stripe_server, store_key, billing
):
    import time

    from alphacut.aws.billing.low_balance_queue import LowBalance
    from alphacut.billing.service import low_balance_notices

    with_saved_card(stripe_server, store_key)
    settings_call(handler, store_key, auto_top_up="starter", low_balance=20)
    month = time.strftime("%Y-%m", time.gmtime())
    a_day_ago = PaymentRecords(USAGE_TABLE, clock=lambda: time.time() - 25 * 3600)
    assert a_day_ago.count(store_key, f"auto#{month}", 5, once_for="crossing#1")  # then the function died
    done = low_balance_notices().handle(LowBalance(store_key, 1, 10 * MILLI, 20 * MILLI))  # the redrive
    assert done["auto_top_up"]["state"] == "unsure"
    assert [p for p in PaymentRecords(USAGE_TABLE).payments(store_key) if p.reason == "auto"] == []
    fresh = low_balance_notices().handle(LowBalance(store_key, 2, 10 * MILLI, 20 * MILLI))  # a new crossing
    assert fresh["auto_top_up"]["state"] not in ("unsure", "failed")
