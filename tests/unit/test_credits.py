"""Prepaid credits against moto's DynamoDB (the template's usage table): prices from a setting,
reservations that never take the balance below zero, commits in the charge transaction, releases,
expired holds given back, and a delivery the balance could not pay kept as unbilled."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from alphacut.aws.ledger.credits import RELEASE_STALE_SECONDS, STALE_SECONDS, CreditLedger, Reservation
from alphacut.aws.ledger.usage import MeteredCall, UsageMeter, task_hold
from alphacut.errors import InsufficientCredits, InvalidOption
from alphacut.options import CutoutOptions
from alphacut.pricing import CreditPrices, credits, millicredits
from alphacut.settings import ServiceSettings, SettingError
from alphacut_dev.local.dynamodb_capacity import DynamoDBCapacity, Usage
from alphacut_dev.local.dynamodb_consistency import serialise_dynamodb_writes
from alphacut_dev.local.dynamodb_transactions import TransactionConflicts

from tests.unit.moto_table import usage_table

TABLE = "usage"


@pytest.fixture
def meter(monkeypatch):
    with usage_table(monkeypatch, TABLE):
        yield UsageMeter(TABLE)


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


def test_a_model_may_be_priced_apart_per_kind_and_the_others_pay_their_kinds_price():
    prices = ServiceSettings.from_env(
        {"CREDIT_PRICES": "full=1,full@birefnet=3,preview@birefnet=0.5"}
    ).credit_prices
    assert prices.for_options(CutoutOptions.from_mapping({"model": "birefnet"})) == 3000
    assert prices.for_options(CutoutOptions.from_mapping({"model": "birefnet", "size": "preview"})) == 500
    assert prices.for_options(CutoutOptions.from_mapping({"model": "u2netp"})) == 1000
    assert prices.for_options(CutoutOptions()) == 1000  # the default model, unnamed
    assert CreditPrices.parse("full@isnet=2").for_options(CutoutOptions()) == 2000
    assert prices.table() == {
        "full": 1,
        "preview": 0.25,
        "costume": 1,
        "full@birefnet": 3,
        "preview@birefnet": 0.5,
    }
    with pytest.raises(SettingError, match="CREDIT_PRICES.*'full@Bad Name'.*kind@model"):
        ServiceSettings.from_env({"CREDIT_PRICES": "full@Bad Name=2"})
    with pytest.raises(SettingError, match="CREDIT_PRICES.*not '4k'"):
        ServiceSettings.from_env({"CREDIT_PRICES": "4k@birefnet=2"})
    # the grammar of a model's name is the options' own, written twice (settings stay light)
    from alphacut import pricing
    from alphacut.options import MODEL_PATTERN

    assert f"^{pricing._MODEL_NAME.pattern}$" == MODEL_PATTERN


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


@pytest.fixture
def capacity(meter):
    """DynamoDB's metering (applied around what is measured), with the local stack's transactions
    (moto's copy each whole table)."""
    restore_writes = serialise_dynamodb_writes()
    yield DynamoDBCapacity()
    restore_writes()


def paid_calls(meter: UsageMeter, first: int, count: int) -> None:
    for n in range(first, first + count):
        meter.credits.reserve("key", f"call-{n}", 1000, seconds=60)
        meter.record(
            MeteredCall("key", "/v1/cutout", True, f"call-{n}", "2026-11-26", credits=1000, hold=f"call-{n}")
        )


def one_paid_call(meter: UsageMeter, capacity: DynamoDBCapacity, call: str) -> dict[str, Usage]:
    """What each money operation of one call consumed: reserve, commit, the balance read."""
    used = {}
    capacity.apply()
    mark = capacity.mark()
    meter.credits.reserve("key", call, 1000, seconds=60)
    used["reserve"], mark = capacity.since(mark), capacity.mark()
    meter.record(MeteredCall("key", "/v1/cutout", True, call, "2026-11-26", credits=1000, hold=call))
    used["commit"], mark = capacity.since(mark), capacity.mark()
    meter.credits.balance("key")
    used["balance"] = capacity.since(mark)
    capacity.restore()
    return used


@pytest.mark.slow
def test_a_paid_call_reads_and_writes_as_much_after_1000_settled_calls_as_after_100(meter, capacity):
    # ten times the history, the same reads and writes (bench_money.py measures it at scale)
    funded(meter, 4_000_000)
    paid_calls(meter, 0, 100)
    after_100 = one_paid_call(meter, capacity, "probe-100")
    paid_calls(meter, 100, 900)
    after_1000 = one_paid_call(meter, capacity, "probe-1000")
    for step in ("reserve", "commit", "balance"):
        early, late = after_100[step], after_1000[step]
        assert (early.items_read, early.read_units, early.write_units, early.requests) == (
            late.items_read,
            late.read_units,
            late.write_units,
            late.requests,
        ), step
    assert after_1000["reserve"].items_read == 0 and after_1000["reserve"].requests == 3  # three writes
    assert after_1000["balance"].read_units == 1
    assert meter.credits.balance("key") == 4_000_000 - 1002 * 1000


class Killed(Exception):
    """The function stopped here (a timeout, an out-of-memory kill)."""


def balance_item(key: str = "key") -> dict:
    return boto3.client("dynamodb").get_item(
        TableName=TABLE, Key={"pk": {"S": f"credits#{key}"}, "sk": {"S": "balance"}}, ConsistentRead=True
    )["Item"]


def stop_at_write(patch: pytest.MonkeyPatch, number: int) -> None:
    """The function stops (is killed) just before its ``number``-th single-item write."""
    original, writes = CreditLedger._write, []

    def write(self, operation, **request):
        writes.append(operation)
        if len(writes) == number:
            raise Killed()
        return original(self, operation, **request)

    patch.setattr(CreditLedger, "_write", write)


def release_killed_before_write(meter, monkeypatch, number: int) -> CreditLedger:
    """A key with 3 credits, a 1-credit hold "failed", its release killed before its ``number``-th write."""
    ledger = funded(meter, 3000)
    ledger.reserve("key", "failed", 1000, seconds=90)
    with monkeypatch.context() as patch:
        stop_at_write(patch, number)
        with pytest.raises(Killed):
            ledger.release("key", "failed")
    return ledger


@pytest.mark.parametrize("stop", ["after the debit", "after the hold"])
def test_a_reservation_killed_between_its_writes_is_finished_by_the_sweep_and_given_back_when_due(
    meter, monkeypatch, stop
):
    ledger = funded(meter, 3000)
    with monkeypatch.context() as patch:
        if stop == "after the debit":
            patch.setattr(CreditLedger, "_finish", lambda self, reservation: (_ for _ in ()).throw(Killed()))
        else:
            stop_at_write(patch, 2)  # the entry's removal, after the hold was put
        with pytest.raises(Killed):
            ledger.reserve("key", "killed", 1000, seconds=90)
    assert ledger.balance("key") == 2000 and "m#killed" in balance_item()  # held: not spendable, not lost
    now = time.time()
    assert ledger.sweep(now).finished == 0  # not stale yet: its function may still be finishing it
    swept = ledger.sweep(now + STALE_SECONDS + 1)
    assert swept.finished == 1 and "m#killed" not in balance_item() and balance_item()["inflight"]["N"] == "0"
    assert [h.hold_id for h in ledger.holds("key")] == ["killed"] and ledger.balance("key") == 2000
    assert ledger.sweep(now + STALE_SECONDS + 2).released == 0  # the hold is not due yet
    assert ledger.sweep(now + 91).released == 1 and ledger.balance("key") == 3000
    retired = ledger.sweep(now + 200)  # the released hold's TTL, once no entry names it
    assert (retired.released, retired.finished) == (0, 1) and "expires_at" in hold_item("killed")
    last = ledger.sweep(now + 300)
    assert (last.released, last.finished) == (0, 0) and "open_due" not in balance_item()  # nothing left due


@pytest.mark.parametrize("stop_before", [2, 3, 4])  # the credit, the hold released, the entry removed
def test_a_release_killed_between_its_writes_gives_the_credits_back_once(meter, monkeypatch, stop_before):
    ledger = release_killed_before_write(meter, monkeypatch, stop_before)
    assert ledger.hold("key", "failed") is None  # releasing: no commit can take it now
    unbilled = MeteredCall("key", "/v1/cutout", True, "late", "2026-11-26", credits=1000, hold="failed")
    now = time.time()
    for later in (STALE_SECONDS + 1, RELEASE_STALE_SECONDS + 1, RELEASE_STALE_SECONDS + 2):
        ledger.sweep(now + later)
        ledger.sweep(now + later)  # a second run finds nothing more to do
    assert ledger.balance("key") == 3000 and balance_item()["inflight"]["N"] == "0"
    assert not [name for name in balance_item() if name.startswith(("m#", "r#"))]
    assert meter.record(unbilled) and ledger.balance("key") == 2000  # a late delivery pays from the balance


def test_a_second_reservation_of_the_same_hold_gives_its_debit_back(meter):
    ledger = funded(meter, 3000)
    ledger.reserve("key", "task#t1", 1000, seconds=600)
    ledger.reserve("key", "task#t1", 1000, seconds=600)  # a retried submission: reserved once
    assert ledger.balance("key") == 2000 and len(ledger.holds("key")) == 1
    assert not [name for name in balance_item() if name.startswith("m#")]


def test_the_owner_and_two_sweeps_finishing_one_reservation_at_once_debit_it_once(meter, monkeypatch):
    ledger = funded(meter, 3000)
    with monkeypatch.context() as patch:
        patch.setattr(CreditLedger, "_finish", lambda self, reservation: None)
        ledger.reserve("key", "slow", 1000, seconds=90)
    (name,) = [name for name in balance_item() if name.startswith("m#")]
    reservation = Reservation.from_entry("key", name.removeprefix("m#"), balance_item()[name])
    later = time.time() + STALE_SECONDS + 1
    with ThreadPoolExecutor(3) as pool:
        list(
            pool.map(lambda f: f(), [lambda: ledger._finish(reservation)] + [lambda: ledger.sweep(later)] * 2)
        )
    assert ledger.balance("key") == 2000 and len(ledger.holds("key")) == 1
    assert balance_item()["inflight"]["N"] == "0"


def test_paid_calls_of_one_key_at_once_never_fail_for_conflicts_and_add_up(meter):
    """40 instances of one key's calls at once, with DynamoDB's conflicts: every reservation,
    commit and release goes through, the balance and the counters agree to the credit."""
    restore_writes = serialise_dynamodb_writes()
    conflicts = TransactionConflicts(seconds=0.02)
    conflicts.apply()
    try:
        ledger = funded(meter, 1_000_000)

        def call(n: int) -> None:
            ledger.reserve("key", f"c{n}", 1000, seconds=60)
            if n % 5 == 0:  # a failed call: its credits come back
                assert ledger.release("key", f"c{n}")
            else:
                meter.record(
                    MeteredCall("key", "/v1/cutout", True, f"c{n}", "2026-11-26", credits=1000, hold=f"c{n}")
                )

        with ThreadPoolExecutor(40) as pool:
            list(pool.map(call, range(200)))
    finally:
        conflicts.restore()
        restore_writes()
    # each of the 160 deliveries committed in a transaction (releases are single writes), and
    # DynamoDB refused some writes for conflicts: the calls went through all the same
    assert conflicts.transactions >= 160 and conflicts.conflicts > 0
    assert ledger.balance("key") == 1_000_000 - 160 * 1000
    report = meter.report("key", "2026-11-26", "2026-11-26", with_credits=True)
    assert report["total"] == {"calls": 160, "charged": 160, "credits": 160}


def test_a_calls_reservation_finishes_beside_the_model_and_settling_waits_for_it(meter, monkeypatch):
    """Only the debit comes before the model (a 402 costs no model work); the hold's writes run
    on a thread beside it, and the call is settled only once they are done."""
    from alphacut.api.credits import CreditGate
    from alphacut.api.metering import CallOutcome, settle_call

    ledger = funded(meter, 3000)
    finish = CreditLedger._finish
    monkeypatch.setattr(CreditLedger, "_finish", lambda self, r: (time.sleep(0.3), finish(self, r)))
    gate = CreditGate(ledger, "key", "call-1", "/v1/cutout", ServiceSettings())
    started = time.perf_counter()
    gate.reserve_call(CutoutOptions())
    assert time.perf_counter() - started < 0.25 and gate.left == 2000  # the debit only
    assert ledger.hold("key", "call-1") is None  # its hold is still being written
    usage = settle_call(meter, gate, CallOutcome("key", "/v1/cutout", "call-1", True, True))
    assert (usage.credits, usage.remain) == (1, 2) and ledger.balance("key") == 2000
    assert ledger.holds("key") == [] and "m#call-1" not in balance_item()  # committed, entry gone


def test_a_reservation_whose_last_writes_failed_beside_the_model_is_finished_before_settling(
    meter, monkeypatch
):
    from alphacut.api.credits import CreditGate

    ledger = funded(meter, 3000)
    finish, failures = CreditLedger._finish, []

    def flaky(self, reservation):
        if not failures:
            failures.append(1)
            raise Killed()
        finish(self, reservation)

    monkeypatch.setattr(CreditLedger, "_finish", flaky)
    gate = CreditGate(ledger, "key", "call-2", "/v1/cutout", ServiceSettings())
    gate.reserve_call(CutoutOptions())
    assert gate.release()  # waits, finishes it again, then gives the credit back
    assert ledger.balance("key") == 3000 and failures == [1]


def hold_item(hold_id: str, key: str = "key") -> dict:
    return boto3.client("dynamodb").get_item(
        TableName=TABLE, Key={"pk": {"S": f"hold#{key}"}, "sk": {"S": hold_id}}, ConsistentRead=True
    )["Item"]


def test_two_sweeps_finishing_one_release_from_either_side_at_once_credit_it_once(meter, monkeypatch):
    """The interleaving the money simulator found: a release killed after its credit; sweep A claims
    the hold, and before A reads the balance, sweep B runs whole. B may not finish a release that is
    still releasing, so A sees the credit's entry and does not credit again."""
    # killed after the credit: the hold releasing, the r# entry on the balance
    ledger = release_killed_before_write(meter, monkeypatch, 3)
    later = int(time.time()) + RELEASE_STALE_SECONDS + 1
    sweep_b = CreditLedger(TABLE)

    class SweepA(CreditLedger):
        interrupted = False

        @property
        def _db(self):
            db, sweep_a = super()._db, self

            class PausedBeforeTheBalance:
                def __getattr__(self, name):
                    return getattr(db, name)

                def get_item(self, **request):
                    if request["Key"]["sk"]["S"] == "balance" and not sweep_a.interrupted:
                        sweep_a.interrupted = True
                        sweep_b.sweep(later)
                    return db.get_item(**request)

            return PausedBeforeTheBalance()

    sweep_a = SweepA(TABLE)
    assert sweep_a._finish_release("key", "failed", later) == 1 and sweep_a.interrupted
    sweep_b.sweep(later + 61)
    assert ledger.balance("key") == 3000  # was 4000: credited once by each sweep
    assert balance_item()["inflight"]["N"] == "0" and hold_item("failed")["settled"]["S"] == "released"


@pytest.mark.parametrize("stop_before", [2, 3])  # the credit, the hold marked released
def test_a_releasing_hold_keeps_no_ttl_until_its_credits_are_back(meter, monkeypatch, stop_before):
    ledger = release_killed_before_write(meter, monkeypatch, stop_before)
    assert hold_item("failed")["settled"]["S"] == "releasing"
    assert "expires_at" not in hold_item("failed")  # TTL could delete the only record of a debt
    ledger.sweep(time.time() + RELEASE_STALE_SECONDS + 1)
    assert ledger.balance("key") == 3000 and "expires_at" not in hold_item("failed")
    ledger.sweep(time.time() + RELEASE_STALE_SECONDS + STALE_SECONDS + 2)  # no entry names it now
    assert ledger.balance("key") == 3000 and "expires_at" in hold_item("failed")


def test_a_hold_committed_while_its_reservation_entry_is_left_gets_its_ttl_only_after_the_entry(
    meter, monkeypatch
):
    """A settled hold deleted by TTL while its m# entry is still on the balance would be put back
    open by the sweep and given back a second time: the TTL waits for the entry."""
    ledger = funded(meter, 3000)
    with monkeypatch.context() as patch:
        stop_at_write(patch, 2)  # the hold put, the entry's removal never made
        with pytest.raises(Killed):
            ledger.reserve("key", "left", 1000, seconds=90)
    assert meter.record(MeteredCall("key", "/v1/cutout", True, "left", credits=1000, hold="left"))
    assert hold_item("left")["settled"]["S"] == "committed" and "expires_at" not in hold_item("left")
    ledger.sweep(time.time() + STALE_SECONDS + 1)
    assert "m#left" not in balance_item() and "expires_at" in hold_item("left")
    assert "open_due" not in hold_item("left") and ledger.balance("key") == 2000


def test_a_call_that_knows_its_reservation_finished_gives_the_hold_its_ttl_at_once(meter):
    ledger = funded(meter, 3000)
    ledger.reserve("key", "fine", 1000, seconds=90)
    call = MeteredCall("key", "/v1/cutout", True, "fine", credits=1000, hold="fine", hold_finished=True)
    assert meter.record(call) and "expires_at" in hold_item("fine") and "open_due" not in hold_item("fine")


def test_a_release_whose_first_write_landed_and_then_erred_goes_on_at_once(meter, monkeypatch):
    """A timeout after the hold was marked releasing, the SDK's retry answered ConditionalCheckFailed:
    the release sees its own nonce and credits now, not 960 s later through the sweep."""
    ledger = funded(meter, 3000)
    ledger.reserve("key", "failed", 1000, seconds=90)
    original, writes = CreditLedger._write, []

    def landed_then_refused(self, operation, **request):
        writes.append(operation)
        answer = original(self, operation, **request)
        if len(writes) == 1:
            raise meter._db.exceptions.ConditionalCheckFailedException(
                {"Error": {"Code": "ConditionalCheckFailedException"}}, "UpdateItem"
            )
        return answer

    monkeypatch.setattr(CreditLedger, "_write", landed_then_refused)
    assert ledger.release("key", "failed") and ledger.balance("key") == 3000


def test_a_delivery_the_balance_cannot_pay_is_kept_unbilled_in_its_charge_transaction_and_counted(
    meter, monkeypatch
):
    from alphacut.aws.ledger import usage

    counted = []
    monkeypatch.setattr(usage.metrics, "add_metric", lambda name, unit, value: counted.append((name, value)))
    monkeypatch.setattr(
        UsageMeter, "record_unbilled", lambda *a: (_ for _ in ()).throw(AssertionError("apart"))
    )
    funded(meter, 0)
    unpaid = MeteredCall("key", "/v1/cutout", True, "unpaid", "2026-11-26", credits=1000, hold="never")
    assert meter.record(unpaid) and meter.credits.balance("key") == 0
    item = boto3.client("dynamodb").get_item(
        TableName=TABLE, Key={"pk": {"S": "unbilled#call#unpaid"}, "sk": {"S": "-"}}
    )
    assert item["Item"]["owner"]["S"] == "key" and counted == [("UnbilledCalls", 1)]
    assert not meter.record(unpaid) and counted == [("UnbilledCalls", 1)]  # a replay counts nothing


def test_an_item_that_keeps_failing_is_counted_and_skipped_and_the_rest_are_swept(meter, monkeypatch):
    from botocore.exceptions import ClientError

    ledger = funded(meter, 3000)
    for hold in ("bad", "good"):
        ledger.reserve("key", hold, 1000, seconds=-30)
    original = CreditLedger.release

    def release(self, key_id, hold_id, amount=None, entry_gone=False):
        if hold_id == "bad":
            raise ClientError({"Error": {"Code": "InternalServerError"}}, "UpdateItem")
        return original(self, key_id, hold_id, amount, entry_gone)

    monkeypatch.setattr(CreditLedger, "release", release)
    swept = ledger.sweep()
    assert (swept.released, swept.errors) == (1, 1) and swept.oldest_due_seconds >= 30
    assert ledger.balance("key") == 2000 and [h.hold_id for h in ledger.holds("key")] == ["bad"]
    monkeypatch.setattr(CreditLedger, "release", original)
    assert ledger.sweep().released == 1 and ledger.balance("key") == 3000  # the next run finishes it


def test_each_minutes_sweep_starts_at_another_shard(meter, monkeypatch):
    from alphacut.aws.ledger import balances as credits_module  # the ledger's client

    ledger, shards = funded(meter, 0), []
    real = credits_module.client

    class Recording:
        def __init__(self, db):
            self.db = db

        def __getattr__(self, name):
            return getattr(self.db, name)

        def get_paginator(self, operation):
            pages = self.db.get_paginator(operation)

            class Paginator:
                def paginate(self, **request):
                    shards.append(request["ExpressionAttributeValues"][":shard"]["S"])
                    return pages.paginate(**request)

            return Paginator()

    monkeypatch.setattr(credits_module, "client", lambda service: Recording(real(service)))
    starts = []
    for minute in range(3):
        shards.clear()
        ledger.sweep(1_800_000_000 + 60 * minute)
        assert sorted(shards) == [f"due#{n:02d}" for n in range(16)]  # every shard, once
        starts.append(shards[0])
    assert len(set(starts)) == 3


def test_a_debit_past_the_in_flight_cap_is_a_429_that_takes_nothing(meter):
    from alphacut.api.responses import error_response
    from alphacut.aws.ledger.credits import MAX_IN_FLIGHT
    from alphacut.errors import TooManyInFlight, http_status

    ledger = funded(meter, 3000)
    boto3.client("dynamodb").update_item(
        TableName=TABLE,
        Key={"pk": {"S": "credits#key"}, "sk": {"S": "balance"}},
        UpdateExpression="SET inflight = :cap",
        ExpressionAttributeValues={":cap": {"N": str(MAX_IN_FLIGHT)}},
    )
    with pytest.raises(TooManyInFlight) as refused:
        ledger.reserve("key", "one-too-many", 1000, seconds=90)
    assert ledger.balance("key") == 3000 and not [n for n in balance_item() if n.startswith("m#")]
    assert http_status(refused.value) == 429 and refused.value.limit == MAX_IN_FLIGHT
    answer = error_response(refused.value, "request-1")
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"


def test_a_reservation_that_fails_after_its_debit_gives_it_back_at_once(meter, monkeypatch):
    from botocore.exceptions import ClientError

    ledger = funded(meter, 3000)
    original, writes = CreditLedger._write, []

    def entry_removal_fails_once(self, operation, **request):
        writes.append(request.get("UpdateExpression", ""))
        if len(writes) == 2:  # the debit went through; the entry's removal times out
            raise ClientError({"Error": {"Code": "InternalServerError"}}, "UpdateItem")
        return original(self, operation, **request)

    monkeypatch.setattr(CreditLedger, "_write", entry_removal_fails_once)
    with pytest.raises(ClientError):
        ledger.reserve("key", "task#not-submitted", 1000, seconds=50_000)
    assert ledger.balance("key") == 3000  # now, not when the hold falls due hours later
    assert balance_item()["inflight"]["N"] == "0" and not ledger.holds("key")


def test_a_top_up_given_no_reference_gets_one_first_so_that_its_retry_adds_nothing(meter):
    ledger = funded(meter, 0)
    reference = ledger.new_reference()  # what `alphacut keys credit` prints before it tops up
    assert ledger.top_up("key", 5000, reference=reference).reference == reference
    with pytest.raises(InvalidOption, match="made already"):
        ledger.top_up("key", 5000, reference=reference)  # the retry of a top-up that timed out
    assert ledger.balance("key") == 5000 and ledger.new_reference() != reference


def test_the_finalizer_keeps_a_task_it_could_not_charge_as_unbilled(meter):
    meter.record_unbilled("key", "task-9", "execution failed: ChargeFailed")
    item = boto3.client("dynamodb").get_item(
        TableName=TABLE, Key={"pk": {"S": "unbilled#task-9"}, "sk": {"S": "-"}}
    )
    assert item["Item"]["owner"]["S"] == "key" and "ChargeFailed" in item["Item"]["reason"]["S"]
