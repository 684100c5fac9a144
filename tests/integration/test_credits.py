"""Prepaid credits on the local stack: a price per delivered result, the balance on every answer,
402 before the model runs, replays free, a killed instance's reservation given back, tasks that
reserve at submission and settle at their end, and the operator's top-ups and statement."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from alphacut.aws.ledger.usage import UsageMeter, parse_counter_key
from alphacut_dev.local.stack import STACK_NAME
from PIL import Image

from tests.conftest import image_bytes
from tests.stack_fixtures import CREDIT_PLAN, Api, cli_env, credit_key

ALPHACUT = Path(sys.executable).with_name("alphacut")
JPEG = {"Content-Type": "image/jpeg"}


def balance(api: Api) -> float:
    answer = api.get("/v1/usage")
    assert answer.status_code == 200, answer.text
    return answer.json()["balance"]


def wait_final(api: Api, task_id: str, seconds: float = 90) -> dict:
    deadline = time.time() + seconds
    while time.time() < deadline:
        data = api.get(f"/v1/tasks/{task_id}").json()["data"]
        if data["state"] not in (0, 2, 3, 4):
            time.sleep(1.5)  # the Finish / FailTask step settles just after the final state
            return data
        time.sleep(0.3)
    raise AssertionError(f"task {task_id} did not end")


def test_each_delivered_result_costs_its_price_and_every_answer_says_the_balance(admin, stack, small_photo):
    api = credit_key(admin, stack, "3")
    full = api.post("/v1/cutout", data=small_photo, headers=JPEG)
    assert full.status_code == 200 and (full.json()["charge"], full.json()["remain"]) == (1, 2)
    preview = api.post("/v1/cutout?size=preview&return=binary", data=small_photo, headers=JPEG)
    assert preview.headers["X-Alphacut-Charge"] == "0.25" and preview.headers["X-Alphacut-Remain"] == "1.75"
    refused = api.post("/v1/cutout?format=gif", data=small_photo, headers=JPEG)
    assert refused.status_code == 400 and (refused.json()["charge"], refused.json()["remain"]) == (0, 1.75)
    usage = api.get("/v1/usage").json()
    assert usage["credit_based"] and usage["balance"] == 1.75 and usage["daily_quota"] is None
    assert usage["total"] == {"calls": 3, "charged": 2, "credits": 1.25}
    account = api.get("/v1.0/account").json()["data"]["attributes"]
    assert account["credits"]["total"] == 1.75 and account["plan"]["credit_based"] is True


def test_a_balance_that_does_not_cover_the_call_is_402_and_nothing_runs(admin, stack, small_photo):
    api = credit_key(admin, stack, "0.5")
    refused = api.post("/v1/cutout", data=small_photo, headers=JPEG)
    assert refused.status_code == 402, refused.text
    error = refused.json()["error"]
    assert error["code"] == "insufficient_credits" and error["field"] == "credits" and error["limit"] == 1
    assert "0.5" in error["message"] and refused.json()["charge"] == 0
    removebg = api.post("/v1.0/removebg", files={"image_file": ("p.jpg", small_photo)}, data={"size": "full"})
    assert removebg.status_code == 402
    assert removebg.json()["errors"][0]["code"] == "insufficient_credits"
    assert removebg.headers["X-Credits-Charged"] == "0"
    preview = api.post(
        "/v1.0/removebg", files={"image_file": ("p.jpg", small_photo)}, data={"size": "preview"}
    )
    assert preview.status_code == 200 and preview.headers["X-Credits-Charged"] == "0.25"
    assert balance(api) == 0.25
    assert api.get("/v1.0/account").json()["data"]["attributes"]["credits"]["total"] == 0.25


def test_a_retry_with_the_same_idempotency_key_costs_nothing(admin, stack, small_photo):
    api = credit_key(admin, stack, "2")
    headers = {**JPEG, "Idempotency-Key": f"credits-{time.time_ns()}"}
    first = api.post("/v1/cutout", data=small_photo, headers=headers)
    again = api.post("/v1/cutout", data=small_photo, headers=headers)
    assert first.status_code == again.status_code == 200
    assert (first.json()["charge"], again.json()["charge"]) == (1, 0)
    assert balance(api) == 1


def test_an_empty_picture_is_delivered_free_and_its_reservation_comes_back(admin, stack):
    api = credit_key(admin, stack, "1")
    blank = image_bytes(Image.new("RGB", (200, 150), (255, 255, 255)), "JPEG")
    answer = api.post("/v1/cutout", data=blank, headers=JPEG)
    assert answer.status_code in (200, 422)
    assert answer.json()["charge"] == 0 and balance(api) == 1


@pytest.mark.slow
def test_a_killed_instance_gives_its_reservation_back_at_the_sweep_once_it_expires(admin, stack, small_photo):
    api = credit_key(admin, stack, "1")
    meter = UsageMeter(stack.physical["UsageTable"])
    stack.set_function_env("CutoutFunction", CREDIT_HOLD_SECONDS="3")
    try:
        answers: list = []
        call = threading.Thread(
            target=lambda: answers.append(api.post("/v1/cutout", data=small_photo, headers=JPEG))
        )
        call.start()
        deadline = time.time() + 30
        while not meter.credits.holds(api.key_id) and time.time() < deadline:
            time.sleep(0.01)
        assert meter.credits.holds(api.key_id), "the call never reserved"
        # the sweep's own schedule (each minute) held: what releases the hold is the sweep invoked below
        with stack.schedules_held():
            [running] = stack.workers["CutoutFunction"].running()  # the instance the call is on
            running.process.kill()  # mid-call, as a Lambda crash
            call.join(60)
            assert answers and answers[0].status_code >= 500
            stack.workers["CutoutFunction"].restart()
            assert meter.credits.balance(api.key_id) == 0  # held, not lost
            time.sleep(3.5)
            assert balance(api) == 0  # a call's path never sweeps: the schedule does
            kind, swept = stack.workers["SweepFunction"].invoke({"source": "aws.events"}, None)
            assert kind == "ok" and swept["released"] == 1
        assert balance(api) == 1  # expired: given back by the sweep
        again = api.post("/v1/cutout", data=small_photo, headers=JPEG)
        assert again.status_code == 200 and again.json()["remain"] == 0
    finally:
        stack.set_function_env("CutoutFunction", CREDIT_HOLD_SECONDS="90")


def test_a_task_reserves_at_submission_and_settles_at_its_end(admin, stack, small_photo, image_server):
    api = credit_key(admin, stack, "1")
    done = api.post("/v1/tasks", data=small_photo, headers=JPEG).json()["data"]["task_id"]
    assert balance(api) == 0  # reserved at submission (running, done or charged: still 0)
    refused = api.post("/v1/tasks", data=small_photo, headers=JPEG)
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "insufficient_credits"
    assert wait_final(api, done)["state"] == 1
    assert balance(api) == 0 and api.get("/v1/usage").json()["total"]["credits"] == 1
    poll = api.get(f"/v1/tasks/{done}").json()
    assert (poll["data"]["cost"], poll["charge"]) == (1, 0)  # what the task cost; the poll itself is free
    admin.credit(api.key_id, 1000)
    failing = api.post("/v1/tasks", json={"image_url": image_server.url("missing.jpg")}).json()
    assert wait_final(api, failing["data"]["task_id"])["state"] < 0
    assert balance(api) == 1  # the failed task's reservation given back
    assert api.get("/v1/usage").json()["total"]["credits"] == 1


def test_top_ups_are_audited_once_per_reference_and_quota_keys_take_none(admin, stack):
    api = credit_key(admin, stack, "0")
    top_up, after = admin.credit(api.key_id, 5000, reference="invoice-1", note="five")
    assert after == 5000 and top_up.reference == "invoice-1"
    with pytest.raises(Exception, match="made already"):
        admin.credit(api.key_id, 5000, reference="invoice-1")
    assert [t.amount for t in admin.ledger.top_ups(api.key_id)] == [5000]
    quota_key = admin.create(f"quota-{time.time_ns()}", "bulk")
    with pytest.raises(Exception, match="not a credit-based one"):
        admin.credit(quota_key.id, 1000)


def test_the_admin_command_tops_up_and_the_statement_totals_match_the_usage_items(
    admin, stack, small_photo, image_server
):
    env = cli_env(stack)
    api = credit_key(admin, stack, "0")
    topped = subprocess.run(
        [str(ALPHACUT), "keys", "--stack", STACK_NAME, "credit", "--key", api.key_id, "--add", "6"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert topped.returncode == 0 and "balance 6" in topped.stdout, topped.stderr
    charges = []
    replay = {**JPEG, "Idempotency-Key": f"statement-{time.time_ns()}"}
    for answer in (
        api.post("/v1/cutout", data=small_photo, headers=JPEG),
        api.post("/v1/cutout", data=small_photo, headers=replay),
        api.post("/v1/cutout", data=small_photo, headers=replay),  # a replay: free
        api.post("/v1/cutout?format=gif", data=small_photo, headers=JPEG),  # a failure: free
        api.post("/v1.0/removebg", files={"image_file": ("p.jpg", small_photo)}, data={"size": "preview"}),
    ):
        charges.append(float(answer.headers["X-Alphacut-Charge"]))
    task = api.post("/v1/tasks", data=small_photo, headers=JPEG).json()["data"]["task_id"]
    wait_final(api, task)
    charges.append(1.0)  # the task's price (the Finish step charged it)
    month = time.strftime("%Y-%m", time.gmtime())
    printed = subprocess.run(
        [str(ALPHACUT), "usage", "--stack", STACK_NAME, "statement", "--month", month, "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert printed.returncode == 0, printed.stderr
    statement = json.loads(printed.stdout)
    (line,) = [line for line in statement["lines"] if line["key_id"] == api.key_id]
    items = stack.client("dynamodb").query(
        TableName=stack.physical["UsageTable"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"usage#{api.key_id}"}},
    )["Items"]
    totals = [i for i in items if parse_counter_key(i["sk"]["S"])[1] == "*"]  # the day total's shards
    assert line["calls"] == sum(int(i["calls"]["N"]) for i in totals)  # polls and refusals too
    assert line["deliveries"] == sum(int(i["charged"]["N"]) for i in totals) == 4
    assert line["credits_used"] == sum(int(i.get("credits", {"N": "0"})["N"]) for i in totals) / 1000
    assert line["credits_used"] == sum(charges) == 3.25 and line["credits_added"] == 6
    assert line["amount"] == f"{3.25 * float(statement['price_per_credit']):.2f}"
    assert statement["totals"]["calls"] == sum(row["calls"] for row in statement["lines"])
    csv_text = subprocess.run(
        [str(ALPHACUT), "usage", "--stack", STACK_NAME, "statement", "--month", month],
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    assert csv_text.splitlines()[0].startswith("customer,key_id,plan,calls") and api.key_id in csv_text


def test_a_key_made_for_images_only_cuts_out_and_is_refused_billing_through_the_authorizer(
    admin, stack, small_photo
):
    # the operator's key for a storefront plugin: its scopes ride in the real authorizer's answer
    key = admin.create(f"test-plugin-{time.time_ns()}", CREDIT_PLAN, ("images",))
    admin.credit(key.id, 2000, note="tests")
    plugin = Api(stack.url, key.value, key.id)
    cut = plugin.post("/v1/cutout", data=small_photo, headers=JPEG)
    assert cut.status_code == 200 and cut.json()["charge"] == 1
    for method, path in (("POST", "/v1/billing/settings"), ("GET", "/v1/billing/payments")):
        refused = plugin.request(method, path, json={})
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "insufficient_scope"
    assert plugin.get("/v1/usage").json()["balance"] == 1
    assert plugin.get("/v1.0/account").status_code == 200
