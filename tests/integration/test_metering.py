"""Pay-per-use on the local stack: keys and plans made by the admin command, exact counts under
concurrency, free failures, quota exhaustion and the next day's reset (clock injected), idempotent
retries charged once, what the customer sees (charge, remain, /v1/usage)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alphacut_dev.local.stack import STACK_NAME
from PIL import Image

from tests.conftest import image_bytes
from tests.stack_fixtures import Api, cli_env, new_key

ALPHACUT = Path(sys.executable).with_name("alphacut")
JPEG = {"Content-Type": "image/jpeg"}


def usage(api: Api) -> dict:
    response = api.get("/v1/usage")
    assert response.status_code == 200, response.text
    return response.json()


def test_plans_come_from_the_template(admin):
    plans = admin.plans()
    assert {"free", "starter", "business"} <= set(plans)
    assert plans["starter"].quota == 1000 and plans["free"].rate_limit == 1.0


def test_charge_and_remain_in_json_and_headers(admin, stack, small_photo):
    api = new_key(admin, stack)
    quota = admin.plans()["bulk"].quota
    as_json = api.post("/v1/cutout", data=small_photo, headers=JPEG)
    assert as_json.json()["charge"] is True and as_json.json()["remain"] == quota - 1
    binary = api.post("/v1/cutout?return=binary", data=small_photo, headers=JPEG)
    assert binary.headers["X-Alphacut-Charge"] == "true" and binary.headers["X-Alphacut-Remain"] == str(
        quota - 2
    )
    # the IETF fields a client paces itself by: the plan's rate and day, and the day's calls left
    bulk = admin.plans()["bulk"]
    assert f'"day";q={quota};w=86400' in binary.headers["RateLimit-Policy"]
    assert binary.headers["RateLimit-Policy"].startswith('"rate";q=') == (bulk.rate_limit is not None)
    assert binary.headers["RateLimit"].startswith(f'"day";r={quota - 2};t=')
    failed = api.post("/v1/cutout?format=gif", data=small_photo, headers=JPEG)
    assert (
        failed.status_code == 400
        and failed.json()["charge"] is False
        and failed.json()["remain"] == quota - 2  # a failure spends nothing of the quota
    )


def test_fifty_concurrent_calls_counted_exactly(admin, stack, small_photo):
    api = new_key(admin, stack)
    # each function's worker runs one request at a time (as one Lambda instance): few model calls,
    # so that the last in line still answers within API Gateway's 29 s
    calls = (
        [("POST", "/v1/cutout", small_photo)] * 4
        + [("POST", "/v1/selfie", small_photo)] * 3
        + [("POST", "/v1/cutout?format=gif", small_photo)] * 16  # refused: counted, free
        + [("GET", "/v1/tasks/none", None)] * 14
        + [("POST", "/v1/costume?classes=socks", small_photo)] * 13
    )
    assert len(calls) == 50

    def send(call):
        method, path, data = call
        return api.request(method, path, data=data, headers=JPEG if data else {}).status_code

    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(send, calls))
    assert statuses.count(200) == 7
    today = usage(api)["days"][-1]
    assert today["calls"] == 50 and today["charged"] == 7
    routes = today["routes"]
    assert routes["/v1/cutout"] == {"calls": 20, "charged": 4}
    assert routes["/v1/selfie"] == {"calls": 3, "charged": 3}
    assert routes["/v1/tasks/{task_id}"] == {"calls": 14, "charged": 0}
    assert routes["/v1/costume"] == {"calls": 13, "charged": 0}


def test_meter_adds_are_atomic_under_fifty_threads(stack):
    """The same item updated from 50 threads at once (DynamoDB ADD through moto's real API)."""
    from alphacut.aws.ledger.usage import MeteredCall, UsageMeter

    os.environ.update(stack.aws_env())
    table = stack.physical["UsageTable"]
    meter = UsageMeter(table)
    barrier = threading.Barrier(50)

    def one(i):
        barrier.wait()
        return meter.record(
            MeteredCall("atomic-test-key", "/v1/cutout", i % 2 == 0, f"atomic-{i}-{time.time_ns()}")
        )

    with ThreadPoolExecutor(50) as pool:
        recorded = list(pool.map(one, range(50)))
    assert all(recorded)
    day = meter.report("atomic-test-key", *[time.strftime("%Y-%m-%d", time.gmtime())] * 2)["days"][0]
    assert day["calls"] == 50 and day["charged"] == 25


def test_a_quota_counts_delivered_results_and_answers_429_when_spent(stack, admin, small_photo):
    api = new_key(admin, stack, "tiny")  # 3 results a day
    for _ in range(4):  # reads spend nothing
        assert api.get("/v1/openapi.json").status_code == 200
    remains = [int(api.post("/v1/cutout", data=small_photo, headers=JPEG).headers["X-Alphacut-Remain"])]
    assert api.post("/v1/cutout", data=b"not a picture", headers=JPEG).status_code in (400, 415, 422)
    remains += [int(api.post("/v1/cutout", data=small_photo, headers=JPEG).headers["X-Alphacut-Remain"])]
    remains += [int(api.post("/v1/cutout", data=small_photo, headers=JPEG).headers["X-Alphacut-Remain"])]
    assert remains == [2, 1, 0]
    refused = api.post("/v1/cutout", data=small_photo, headers=JPEG)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded" and "resets at" in error["message"] and error["limit"] == 3
    assert 0 < int(refused.headers["Retry-After"]) <= 86400 and refused.json()["charge"] is False
    assert api.get("/v1/usage").json()["remain"] == 0  # and reading it still works


def test_the_keys_own_plan_applies(admin, stack):
    free = new_key(admin, stack, "free")  # 1 request/s, burst 2
    codes = [free.get("/v1/openapi.json").status_code for _ in range(6)]
    assert 429 in codes and codes[:2] == [200, 200]
    business = new_key(admin, stack, "business")  # 10/s, burst 20
    assert all(business.get("/v1/openapi.json").status_code == 200 for _ in range(6))


def test_idempotent_retry_is_answered_once_and_charged_once(admin, stack, small_photo):
    api = new_key(admin, stack)
    headers = {**JPEG, "Idempotency-Key": "order-1234-photo-1"}
    first = api.post("/v1/cutout?return=binary", data=small_photo, headers=headers)
    second = api.post("/v1/cutout?return=binary", data=small_photo, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true" and second.content == first.content
    assert first.headers["X-Alphacut-Charge"] == "true" and second.headers["X-Alphacut-Charge"] == "false"
    assert second.headers["X-Request-Id"] == first.headers["X-Request-Id"]  # the first answer, replayed
    other = api.post("/v1/cutout?return=binary&format=webp", data=small_photo, headers=headers)
    assert other.status_code == 409 and other.json()["error"]["field"] == "Idempotency-Key"
    routes = usage(api)["days"][-1]["routes"]
    assert routes["/v1/cutout"] == {"calls": 3, "charged": 1}


def test_async_task_charged_once_when_it_succeeds(admin, stack, small_photo):
    api = new_key(admin, stack)
    created = api.post("/v1/tasks", data=small_photo, headers=JPEG).json()
    assert created["charge"] is False
    task_id = created["data"]["task_id"]
    deadline = time.time() + 90
    while time.time() < deadline:
        state = api.get(f"/v1/tasks/{task_id}").json()["data"]["state"]
        if state == 1:
            break
        time.sleep(1)
    assert state == 1
    deadline = time.time() + 30
    while time.time() < deadline:  # the Finish step charges just after it marks "done"
        routes = usage(api)["days"][-1]["routes"]
        if routes.get("/v1/tasks", {}).get("charged"):
            break
        time.sleep(0.5)
    assert routes["/v1/tasks"] == {"calls": 1, "charged": 1}
    assert routes["/v1/tasks/{task_id}"]["charged"] == 0


def test_usage_report_range_and_errors(admin, stack, small_photo):
    api = new_key(admin, stack)
    api.post("/v1/cutout", data=small_photo, headers=JPEG)
    report = usage(api)  # the plan comes with the key from its first call
    assert report["total"]["charged"] == 1 and report["daily_quota"] == 100000
    today = report["days"][-1]["date"]
    assert api.get(f"/v1/usage?from={today}&to={today}").json()["total"]["calls"] >= 1
    assert api.get("/v1/usage?from=2020-01-01&to=2020-01-02").json()["days"] == []
    bad = api.get("/v1/usage?from=yesterday")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "from"
    backwards = api.get("/v1/usage?from=2026-02-02&to=2026-01-01")
    assert backwards.status_code == 400


def test_keys_command_creates_lists_and_revokes(stack, small_photo):
    env = cli_env(stack)

    def keys(*args):
        result = subprocess.run(
            [str(ALPHACUT), "keys", "--stack", STACK_NAME, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    created = keys("create", "--customer", "acme-shoes", "--plan", "starter")
    key_id = created.split()[2]
    value = created.strip().splitlines()[-1].split(": ")[1]
    listing = keys("list", "--customer", "acme-shoes")
    assert "plan starter" in listing and any(
        key_id in line and "acme-shoes" in line for line in listing.splitlines()
    )
    api = Api(stack.url, value)
    assert api.post("/v1/cutout", data=small_photo, headers=JPEG).status_code == 200
    keys("revoke", key_id)
    time.sleep(float(stack.parameters["KeyCacheSeconds"]) + 0.5)  # the authorizer's answer, cached till then
    assert api.post("/v1/cutout", data=small_photo, headers=JPEG).status_code == 401
    unknown = subprocess.run(
        [str(ALPHACUT), "keys", "--stack", STACK_NAME, "create", "--customer", "x", "--plan", "platinum"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert unknown.returncode == 2 and "plans:" in unknown.stderr


@pytest.fixture(scope="module")
def big_photo_url(eval_dir, image_server) -> str:
    """A 2700x4000 photo with grain, served by URL (over the 6 MB a request body may carry): its
    cutout and mask in base64 do not fit in Lambda's 6 MB answer."""
    import numpy as np

    photo = Image.open(min((eval_dir / "person" / "images").iterdir())).convert("RGB").resize((2700, 4000))
    grain = np.random.default_rng(7).integers(-40, 40, (4000, 2700, 3))
    noisy = Image.fromarray(np.clip(np.asarray(photo, dtype=np.int16) + grain, 0, 255).astype(np.uint8))
    image_server.files["big-grainy.jpg"] = image_bytes(noisy, "JPEG", quality=95)
    return image_server.url("big-grainy.jpg")


def test_an_answer_over_lambdas_limit_is_refused_uncharged_and_replayed_as_refused(
    admin, stack, big_photo_url
):
    api = new_key(admin, stack)
    request = {"image_url": big_photo_url, "output": "both", "return": "base64"}
    headers = {"Idempotency-Key": "too-big-for-lambda-1"}
    first = api.post("/v1/cutout", json=request, headers=headers)
    assert first.status_code == 413, first.text[:300]
    error = first.json()["error"]
    assert (
        error["code"] == "response_too_large" and error["field"] == "return" and error["limit"] == 6 * 2**20
    )
    assert "return=url" in error["message"] and first.json()["charge"] is False
    retried = api.post("/v1/cutout", json=request, headers=headers)
    assert retried.status_code == 413 and retried.headers["Idempotent-Replayed"] == "true"  # never a 502
    as_links = api.post("/v1/cutout", json={**request, "return": "url"})
    assert as_links.status_code == 200 and as_links.json()["charge"] is True
    routes = usage(api)["days"][-1]["routes"]
    assert routes["/v1/cutout"] == {"calls": 3, "charged": 1}


def test_an_abandoned_idempotency_claim_is_taken_over_once_it_expires(stack):
    """A claim whose invocation died (timeout, crash) answers 'in progress' for a minute, then a
    retry may take it over, instead of a 409 for 24 hours."""
    from alphacut.aws.ledger.idempotency import IN_PROGRESS_SECONDS, IdempotencyStore

    os.environ.update(stack.aws_env())
    now = [1_900_000_000.0]
    store = IdempotencyStore(
        stack.physical["UsageTable"], stack.physical["ResultsBucket"], clock=lambda: now[0]
    )
    key = f"crashed-{time.time_ns()}"
    assert store.claim("expiry-test", key, "fp").new
    now[0] += IN_PROGRESS_SECONDS - 1
    waiting = store.claim("expiry-test", key, "fp")
    assert not waiting.new and not waiting.done
    now[0] += 2
    assert store.claim("expiry-test", key, "fp").new
    store.finish("expiry-test", key, 200, b'{"status": 200}')
    now[0] += 3600
    finished = store.claim("expiry-test", key, "fp")  # a finished record is replayed for 24 h
    assert not finished.new and finished.done and store.answer(finished) == b'{"status": 200}'


def test_keys_made_the_old_way_are_migrated_and_a_burst_of_calls_spends_none_of_the_management_api(
    admin, stack
):
    """API Gateway's management API allows 10 requests a second per account (emulated), shared by
    everything in it: a call never spends it (the authorizer reads the key and the plan catalogue
    from the usage table). Keys made as API Gateway API keys on the stack's plans (a deployment
    from before the key store) keep their ids and values through ``keys migrate``."""
    apigateway = stack.client("apigateway")
    bulk = admin.plans()["bulk"]
    old = []
    for i in range(5):  # the old way: API Gateway API keys on a usage plan (5 a second at most)
        key = apigateway.create_api_key(name=f"burst-{i}-{time.time_ns()}", enabled=True)
        apigateway.create_usage_plan_key(usagePlanId=bulk.id, keyId=key["id"], keyType="API_KEY")
        old.append((key["id"], Api(stack.url, key["value"])))
    assert old[0][1].get("/v1/usage").status_code == 401  # not in the store yet
    migrated = {key.id for key in admin.migrate()}
    assert {key_id for key_id, _ in old} <= migrated and admin.migrate() == []  # once
    time.sleep(float(stack.parameters["KeyCacheSeconds"]) + 0.5)  # the first key's cached Deny ends
    keys = [api for _, api in old]
    for i in range(5):  # made with the command
        keys.append(Api(stack.url, admin.create(f"burst-made-{i}-{time.time_ns()}", "bulk").value))
    before = len(stack.aws_rules.management_calls)
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(usage, keys))
    assert [answer["daily_quota"] for answer in answers] == [bulk.quota] * 10
    assert [answer["key_id"] for answer in answers[:5]] == [key_id for key_id, _ in old]  # ids kept
    sweep = stack.iam.session_env("SweepFunctionRole")["AWS_ACCESS_KEY_ID"]  # its schedule may run
    during = [call for call in stack.aws_rules.management_calls[before:] if call[1] != sweep]
    assert during == []  # the burst: not one management request


def test_a_flood_of_deferred_calls_is_never_throttled_and_each_is_counted(stack):
    """Lambda's queue mappings ignore reserved concurrency: a mapping with more pollers than the
    Meter function reserves is throttled, each throttle a receive spent toward the dead-letter
    queue, i.e. a call left unmetered. The local stack throttles as Lambda does; the queue's
    visibility timeout is shortened so that throttled receives come around within the test."""
    from alphacut.aws.ledger.usage import MeteredCall, UsageMeter

    os.environ.update(stack.aws_env())
    sqs = stack.client("sqs")
    queue, dead_letters = stack.physical["MeteringQueue"], stack.physical["MeteringDeadLetterQueue"]
    waiting = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]

    def count(url: str) -> int:
        return sum(
            int(v)
            for v in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=waiting)["Attributes"].values()
        )

    visibility = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["VisibilityTimeout"])["Attributes"]
    pollers = [p for p in stack.pollers if p.function == "MeterFunction"]
    throttled, dead_before = sum(p.throttled for p in pollers), count(dead_letters)
    key = f"flood-{time.time_ns()}"
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "2"})
    try:
        for start in range(0, 300, 10):
            calls = [MeteredCall(key, "/v1/cutout", True, f"{key}-{start + i}") for i in range(10)]
            entries = [{"Id": str(i), "MessageBody": call.to_json()} for i, call in enumerate(calls)]
            sqs.send_message_batch(QueueUrl=queue, Entries=entries)
        deadline = time.time() + 120
        while count(queue) and time.time() < deadline:
            time.sleep(0.5)
    finally:
        sqs.set_queue_attributes(QueueUrl=queue, Attributes=visibility)
    assert sum(p.throttled for p in pollers) == throttled, "the Meter mapping was throttled"
    today = time.strftime("%Y-%m-%d", time.gmtime())
    day = UsageMeter(stack.physical["UsageTable"]).report(key, today, today)["days"][0]
    assert day["calls"] == 300 and day["charged"] == 300
    assert count(dead_letters) == dead_before


def test_a_quota_key_gets_exactly_its_quota_when_twice_as_many_calls_arrive_at_once(
    admin, stack, small_photo, monkeypatch
):
    """The service holds the quota itself: API Gateway's usage plans are best-effort (and the
    local gateway's own plan checks are off here), yet no more than the quota is delivered."""
    monkeypatch.setenv("ALPHACUT_LOCAL_GATEWAY_PLANS", "off")
    quota = 8
    stack.client("apigateway").create_usage_plan(
        name=f"{STACK_NAME}-exact-{time.time_ns()}",
        throttle={"rateLimit": 1000.0, "burstLimit": 1000},
        quota={"limit": quota, "period": "DAY"},
    )
    admin._plans = None  # the plan just made, read again (and written to the catalogue)
    plan = next(name for name in admin.plans() if name.startswith("exact-"))
    api = new_key(admin, stack, plan)
    barrier = threading.Barrier(2 * quota)

    def one(_):
        barrier.wait()
        return api.post("/v1/cutout", data=small_photo, headers=JPEG)

    with ThreadPoolExecutor(2 * quota) as pool:
        answers = list(pool.map(one, range(2 * quota)))
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200] * quota + [429] * quota, codes
    refused = [answer.json()["error"]["code"] for answer in answers if answer.status_code == 429]
    assert set(refused) == {"quota_exceeded"}
    assert usage(api)["total"]["charged"] == quota and usage(api)["remain"] == 0
