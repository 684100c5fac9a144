"""Credits never go below zero under concurrency: 200 calls at once against a key with 37 credits,
from four processes that each play a Lambda instance of the cutout function (the real handler,
models and AWS clients; moto's DynamoDB in server mode, which applies each write atomically as
DynamoDB does), while a fifth instance is killed in the middle of a call that had reserved and
the sweep (the schedule, every half second here) gives its hold back once it expires."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest
from alphacut.aws.ledger.credits import CreditLedger
from alphacut.aws.ledger.limits import utc_day
from alphacut.aws.ledger.usage import UsageMeter
from alphacut_dev.local.dynamodb_consistency import serialise_dynamodb_writes

from tests.api.conftest import CREDITS_PLAN, KEY_PLANS, USAGE_TABLE
from tests.api.credit_calls import make_calls
from tests.api.test_routes_in_process import small_png

CREDITS = 37
WORKERS, CALLS_EACH = 4, 50


@pytest.fixture
def credit_key(moto_aws) -> str:
    key_id = f"parallel-{time.time_ns()}"
    KEY_PLANS[key_id] = CREDITS_PLAN
    ledger = CreditLedger(USAGE_TABLE)
    ledger.open(key_id)
    ledger.top_up(key_id, CREDITS * 1000, reference="parallel")
    return key_id


def sweep_until(ledger: CreditLedger, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        ledger.sweep()


@pytest.fixture
def atomic_writes(moto_aws):
    restore = serialise_dynamodb_writes()
    yield
    restore()


@pytest.mark.slow
def test_200_parallel_calls_deliver_exactly_the_37_credits_even_with_an_instance_killed(
    credit_key, atomic_writes
):
    spawn = multiprocessing.get_context("spawn")
    ready, results, start = spawn.Queue(), spawn.Queue(), spawn.Event()
    photo = small_png()
    workers = [
        spawn.Process(
            target=make_calls, args=(CALLS_EACH, credit_key, photo, f"w{n}", 90, ready, start, results)
        )
        for n in range(WORKERS)
    ]
    doomed = spawn.Process(
        target=make_calls, args=(50, credit_key, photo, "killed", 3, ready, start, results)
    )
    for process in [*workers, doomed]:
        process.start()
    for _ in range(WORKERS + 1):
        ready.get(timeout=300)
    ledger = CreditLedger(USAGE_TABLE)
    start.set()
    deadline = time.time() + 60
    while not any(h.hold_id.startswith("killed-") for h in ledger.holds(credit_key)):
        assert time.time() < deadline, "the doomed instance never reserved"
        time.sleep(0.005)
    doomed.kill()  # mid-call: its reservation outlives it, then expires
    stop = threading.Event()
    sweeps = threading.Thread(target=sweep_until, args=(ledger, stop))  # the schedule, sped up
    sweeps.start()
    try:
        answers = [results.get(timeout=600) for _ in range(WORKERS * CALLS_EACH)]
    finally:
        stop.set()
        sweeps.join()
    for process in workers:
        process.join(60)
    doomed_answers = []
    while not results.empty():
        doomed_answers.append(results.get())
    delivered = [a for a in answers if a[1] == 200]
    assert len(delivered) == CREDITS, sorted({a[1] for a in answers})
    assert {a[1] for a in answers} == {200, 402}
    assert sum(float(a[2]) for a in answers) == CREDITS and all(a[2] == "1" for a in delivered)
    assert doomed_answers == [] or all(a[1] != 200 for a in doomed_answers if a[0] == "killed")
    assert ledger.balance(credit_key) == 0 and ledger.holds(credit_key) == []  # none lost, none made
    report = UsageMeter(USAGE_TABLE).report(credit_key, utc_day(), utc_day(), with_credits=True)
    assert report["total"]["charged"] == CREDITS and report["total"]["credits"] == CREDITS
