"""Prepaid credits against moto's DynamoDB (the template's usage table): prices from a setting,
reservations that never take the balance below zero, commits in the charge transaction, releases,
expired holds given back, and a delivery the balance could not pay kept as unbilled."""

from __future__ import annotations

import time

import boto3
import pytest
from alphacut.aws.credits import CreditLedger
from alphacut.aws.usage import MeteredCall, UsageMeter, task_hold
from alphacut.errors import InsufficientCredits, InvalidOption
from alphacut.options import CutoutOptions
from alphacut.pricing import CreditPrices, credits, millicredits
from alphacut.settings import ServiceSettings, SettingError
from alphacut_dev.template import table_definition
from moto import mock_aws

TABLE = "usage"


@pytest.fixture
def meter(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    from alphacut.aws import clients

    clients.client.cache_clear()
    with mock_aws():
        boto3.client("dynamodb").create_table(**table_definition("UsageTable", TABLE))
        yield UsageMeter(TABLE)
    clients.client.cache_clear()


def funded(meter: UsageMeter, amount: int, key: str = "key") -> CreditLedger:
    meter.credits.open(key)
    if amount:
        meter.credits.top_up(key, amount)
    return meter.credits


def test_prices_come_from_the_setting_and_a_wrong_one_names_the_variable():
    prices = ServiceSettings.from_env({"CREDIT_PRICES": "full=2,preview=0.5"}).credit_prices
    assert (prices.full, prices.preview, prices.costume) == (2000, 500, 1000)
    assert prices.for_options(CutoutOptions.from_mapping({"size": "preview"})) == 500
    assert prices.for_options(CutoutOptions.from_mapping({"size": "hd"})) == 2000
    assert prices.for_options(CutoutOptions.from_mapping({"type": "costume"})) == 1000
    assert CreditPrices().table() == {"full": 1, "preview": 0.25, "costume": 1}
    with pytest.raises(SettingError, match="CREDIT_PRICES.*full, preview, costume"):
        ServiceSettings.from_env({"CREDIT_PRICES": "4k=3"})
    with pytest.raises(SettingError, match="CREDIT_PRICES.*3 decimals"):
        ServiceSettings.from_env({"CREDIT_PRICES": "full=0.0001"})
    assert (credits(1000), credits(250), millicredits("37")) == (1, 0.25, 37000)


def test_a_reservation_takes_the_price_and_a_release_gives_it_back(meter):
    ledger = funded(meter, 1500)
    ledger.reserve("key", "call-1", 1000, seconds=60)
    assert ledger.balance("key") == 500 and [h.amount for h in ledger.holds("key")] == [1000]
    with pytest.raises(InsufficientCredits) as refused:
        ledger.reserve("key", "call-2", 1000, seconds=60)
    assert refused.value.field == "credits" and refused.value.limit == 1 and "0.5" in str(refused.value)
    assert ledger.release("key", "call-1") and not ledger.release("key", "call-1")
    assert ledger.balance("key") == 1500 and ledger.holds("key") == []


def test_a_key_without_a_credit_account_cannot_reserve(meter):
    with pytest.raises(InsufficientCredits):
        meter.credits.reserve("stranger", "call", 250, seconds=60)
    assert meter.credits.balance("stranger") is None


def test_a_delivery_commits_its_hold_with_the_counters_in_one_transaction(meter):
    ledger = funded(meter, 2000)
    ledger.reserve("key", "call-1", 1000, seconds=60)
    call = MeteredCall("key", "/v1/cutout", True, "call-1", "2026-11-26", credits=1000, hold="call-1")
    assert meter.record(call) and not meter.record(call)  # applied once
    assert ledger.balance("key") == 1000 and ledger.holds("key") == []
    report = meter.report("key", "2026-11-26", "2026-11-26", with_credits=True)
    assert report["total"] == {"calls": 1, "charged": 1, "credits": 1}
    assert report["days"][0]["routes"]["/v1/cutout"]["credits"] == 1


def test_an_expired_hold_is_released_by_the_sweep_not_by_the_next_reservation(meter):
    ledger = funded(meter, 2000)
    ledger.reserve("key", "killed", 1000, seconds=-1)  # its call was killed: the hold outlived it
    ledger.reserve("key", "next", 1000, seconds=60)
    assert ledger.balance("key") == 0  # a call's path releases nothing
    swept = ledger.sweep()
    assert swept.released == 1 and ledger.balance("key") == 1000
    assert [h.hold_id for h in ledger.holds("key")] == ["next"]
    assert ledger.sweep().released == 0  # released once


def test_a_late_commit_after_its_hold_expired_pays_from_the_balance_or_is_kept_unbilled(meter):
    ledger = funded(meter, 2000)
    ledger.reserve("key", "slow", 1000, seconds=-1)
    assert ledger.sweep().released == 1 and ledger.balance("key") == 2000
    late = MeteredCall("key", "/v1/cutout", True, "slow", "2026-11-26", credits=1000, hold="slow")
    assert meter.record(late) and ledger.balance("key") == 1000
    ledger.reserve("key", "spender", 1000, seconds=60)  # the balance is all held now
    unpaid = MeteredCall("key", "/v1/cutout", True, "unpaid", "2026-11-26", credits=1000, hold="gone")
    assert meter.record(unpaid) and ledger.balance("key") == 0  # never below zero
    item = boto3.client("dynamodb").get_item(
        TableName=TABLE, Key={"pk": {"S": "unbilled#call#unpaid"}, "sk": {"S": "-"}}
    )
    assert "Item" in item
    assert meter.report("key", "2026-11-26", "2026-11-26", with_credits=True)["total"] == {
        "calls": 2,
        "charged": 2,
        "credits": 1,
    }


def test_a_task_charge_commits_the_hold_made_at_submission_and_an_empty_one_releases_it(meter):
    ledger = funded(meter, 3000)
    ledger.reserve("key", task_hold("t1"), 1000, seconds=600)
    ledger.reserve("key", task_hold("t2"), 250, seconds=600)
    assert meter.settle_task("key", "t1", True) and not meter.settle_task("key", "t1", True)
    assert not meter.settle_task("key", "t2", False)  # an empty picture: its credits come back
    assert ledger.balance("key") == 2000 and ledger.holds("key") == []
    assert meter.charge_task("key", "upload-task", price=1000)  # no hold (an upload): the balance pays
    assert ledger.balance("key") == 1000


def test_top_ups_are_kept_once_per_reference_and_bounded(meter):
    ledger = funded(meter, 0)
    ledger.top_up("key", 5000, reference="inv-1", note="first")
    with pytest.raises(InvalidOption, match="made already"):
        ledger.top_up("key", 5000, reference="inv-1")
    with pytest.raises(InvalidOption) as bounded:
        ledger.top_up("key", 0)
    assert bounded.value.field == "add"
    day = time.strftime("%Y-%m-%d", time.gmtime())
    assert [(t.reference, t.amount, t.note) for t in ledger.top_ups("key", day, day)] == [
        ("inv-1", 5000, "first")
    ]
    assert ledger.balance("key") == 5000


def test_a_deferred_call_keeps_its_credits_and_hold_and_an_old_message_reads_without_them():
    call = MeteredCall("key", "/v1/cutout", True, "id", "2026-11-26", credits=250, hold="id")
    assert MeteredCall.from_json(call.to_json()) == call
    old = MeteredCall.from_json('{"key_id":"k","route":"/r","charged":true,"call_id":"c","day":"2026-11-26"}')
    assert (old.credits, old.hold) == (0, "")
