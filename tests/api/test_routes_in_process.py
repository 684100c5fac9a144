"""The native API's behaviour in one process: options errors, metering and idempotency, each a
canned REST proxy event through the real handler (``make_handler``), AWS served by moto."""

from __future__ import annotations

import importlib.util
import io
import time
import uuid

import boto3
from alphacut.aws.ledger.limits import KeyLimits
from alphacut_dev.template import ROOT
from PIL import Image

from tests.api.conftest import (
    DAILY_QUOTA,
    METERING_QUEUE,
    RESULTS_BUCKET,
    USAGE_TABLE,
    LambdaContext,
    answer_json,
    call,
    decoded_body,
    header,
)
from tests.stack_fixtures import dynamodb_fault


def small_png() -> bytes:
    """A red square on grey: something to cut out, small enough to be quick."""
    image = Image.new("RGB", (96, 96), (128, 128, 128))
    image.paste((220, 30, 30), (24, 24, 72, 72))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def usage_today(key_id: str, route: str | None = None) -> dict:
    """The key's counters for today (all routes, or ``route``), straight from the usage table: the
    counter's shards added up."""
    from alphacut.aws.ledger.limits import utc_day
    from alphacut.aws.ledger.usage import TOTAL_ROUTE, parse_counter_key

    items = boto3.client("dynamodb").query(
        TableName=USAGE_TABLE,
        ConsistentRead=True,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :day)",
        ExpressionAttributeValues={":pk": {"S": f"usage#{key_id}"}, ":day": {"S": f"{utc_day()}#"}},
    )["Items"]
    wanted = route or TOTAL_ROUTE
    mine = [item for item in items if parse_counter_key(item["sk"]["S"])[1] == wanted]
    return {name: sum(int(item.get(name, {}).get("N", 0)) for item in mine) for name in ("calls", "charged")}


def post_cutout(
    handler,
    key_id: str,
    body: bytes | None = None,
    query: dict | None = None,
    extra_headers: dict | None = None,
) -> dict:
    """POST /v1/cutout with a PNG body (a small photo unless ``body``) under ``key_id``."""
    headers = {"Content-Type": "image/png", **(extra_headers or {})}
    return call(
        handler,
        "POST",
        "/v1/cutout",
        body=small_png() if body is None else body,
        headers=headers,
        query=query,
        key_id=key_id,
    )


def test_an_unknown_format_is_a_400_naming_the_field_counted_and_not_charged(handler, key_id):
    before = usage_today(key_id)
    answer = post_cutout(handler, key_id, query={"format": "gif"})
    assert answer["statusCode"] == 400
    error = answer_json(answer)["error"]
    assert error["code"] == "invalid_option" and error["field"] == "format"
    assert header(answer, "X-Alphacut-Charge") == "false"
    after = usage_today(key_id)
    assert after == {"calls": before["calls"] + 1, "charged": before["charged"]}


def test_the_answer_names_the_model_and_a_model_not_in_the_registry_is_a_400_naming_it(handler, key_id):
    default = post_cutout(handler, key_id, query={"return": "base64"})
    assert answer_json(default)["model"] == "isnet"  # the JSON answer; an image answer in a header:
    chosen = post_cutout(handler, key_id, query={"model": "u2netp"}, extra_headers={"Accept": "image/png"})
    assert chosen["statusCode"] == 200 and header(chosen, "X-Alphacut-Model") == "u2netp"
    unknown = post_cutout(handler, key_id, query={"model": "birefnet"})
    error = answer_json(unknown)["error"]
    assert unknown["statusCode"] == 400 and error["field"] == "model"
    assert "no model 'birefnet'; models are isnet, u2netp" in error["message"]
    assert header(unknown, "X-Alphacut-Charge") == "false"


def test_a_body_that_is_no_image_is_a_415_and_not_charged(handler, key_id):
    answer = post_cutout(handler, key_id, body=b"%PDF-1.7 not an image")
    assert answer["statusCode"] == 415
    assert answer_json(answer)["error"]["code"] == "unsupported_image_format"
    assert header(answer, "X-Alphacut-Charge") == "false"


def test_a_delivered_cutout_is_charged_once_and_says_what_remains(handler, key_id):
    before, taken_before = usage_today(key_id), KeyLimits(USAGE_TABLE).taken(key_id)
    answer = post_cutout(handler, key_id, query={"return": "base64"})
    assert answer["statusCode"] == 200
    body = answer_json(answer)
    assert body["charge"] is True and body["image"]["content_type"] == "image/png"
    after = usage_today(key_id)
    assert after == {"calls": before["calls"] + 1, "charged": before["charged"] + 1}
    taken = KeyLimits(USAGE_TABLE).taken(key_id)
    assert taken == taken_before + 1 and body["remain"] == DAILY_QUOTA - taken  # the day's slot, kept


def test_a_quota_counts_results_so_errors_and_reads_leave_remain_where_it_was(handler, key_id):
    remain = answer_json(post_cutout(handler, key_id, query={"return": "base64"}))["remain"]
    for _ in range(3):
        refused = call(
            handler,
            "POST",
            "/v1/cutout",
            body=b"not an image",
            key_id=key_id,
            headers={"Content-Type": "image/png"},
        )
        assert refused["statusCode"] in (400, 415, 422) and answer_json(refused)["remain"] == remain
        usage = call(handler, "GET", "/v1/usage", key_id=key_id)
        assert usage["statusCode"] == 200 and answer_json(usage)["remain"] == remain
    assert answer_json(post_cutout(handler, key_id, query={"return": "base64"}))["remain"] == remain - 1


def test_a_retry_with_the_same_idempotency_key_is_replayed_and_not_charged_again(handler, key_id):
    idempotency = {"Idempotency-Key": str(uuid.uuid4())}
    first = post_cutout(handler, key_id, query={"return": "base64"}, extra_headers=idempotency)
    charged_after_first = usage_today(key_id)["charged"]
    retry = post_cutout(handler, key_id, query={"return": "base64"}, extra_headers=idempotency)
    assert first["statusCode"] == retry["statusCode"] == 200
    assert header(retry, "Idempotent-Replayed") == "true"
    assert answer_json(retry)["charge"] is False
    assert answer_json(retry)["image"]["base64"] == answer_json(first)["image"]["base64"]
    assert usage_today(key_id)["charged"] == charged_after_first


def test_the_same_idempotency_key_for_another_request_is_a_409(handler, key_id):
    idempotency = {"Idempotency-Key": str(uuid.uuid4())}
    first = post_cutout(handler, key_id, query={"return": "base64"}, extra_headers=idempotency)
    other = post_cutout(handler, key_id, query={"format": "webp"}, extra_headers=idempotency)
    assert first["statusCode"] == 200 and other["statusCode"] == 409
    assert answer_json(other)["error"]["field"] == "Idempotency-Key"


def _meter_function():
    spec = importlib.util.spec_from_file_location("meter_app", ROOT / "functions" / "meter" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_metering_write_that_fails_keeps_the_answer_and_is_counted_once_from_the_queue(handler, key_id):
    before = usage_today(key_id), usage_today(key_id, "/v1/cutout")
    with dynamodb_fault("transact_write_items", lambda text: f"usage#{key_id}" in text) as refused:
        answer = post_cutout(handler, key_id, query={"return": "base64"})
    assert refused and answer["statusCode"] == 200 and answer_json(answer)["charge"] is True
    assert (usage_today(key_id), usage_today(key_id, "/v1/cutout")) == before  # nothing half written
    sqs = boto3.client("sqs")
    queue = sqs.get_queue_url(QueueName=METERING_QUEUE)["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    assert len(messages) == 1
    event = {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:metering",
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }
    meter_function = _meter_function()
    for _ in range(2):  # SQS delivers at least once: the second delivery counts nothing
        assert meter_function.handler(event, LambdaContext())["batchItemFailures"] == []
    expected = {"calls": before[0]["calls"] + 1, "charged": before[0]["charged"] + 1}
    assert usage_today(key_id) == expected
    assert usage_today(key_id, "/v1/cutout") == {
        "calls": before[1]["calls"] + 1,
        "charged": before[1]["charged"] + 1,
    }


def blank_png() -> bytes:
    image = Image.new("RGB", (300, 200), (255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_an_empty_cutout_is_delivered_and_not_charged(handler, key_id):
    before = usage_today(key_id)
    answer = post_cutout(handler, key_id, body=blank_png(), query={"return": "base64"})
    body = answer_json(answer)
    assert answer["statusCode"] == 200 and body["found"] is False
    assert body["charge"] is False and header(answer, "X-Alphacut-Charge") == "false"
    assert usage_today(key_id) == {"calls": before["calls"] + 1, "charged": before["charged"]}


def test_every_listed_page_file_is_served_and_an_unknown_one_is_404(handler):
    from alphacut.api.web import STATIC_TYPES

    for name, content_type in STATIC_TYPES.items():
        answer = call(handler, "GET", f"/static/{name}", key_id=None, resource="/static/{name}")
        assert answer["statusCode"] == 200, name
        assert header(answer, "Content-Type") == content_type
    missing = call(handler, "GET", "/static/screenshot.png", key_id=None, resource="/static/{name}")
    assert missing["statusCode"] == 404 and answer_json(missing)["error"]["code"] == "not_found"


def _items_with_prefix(prefix: str) -> list[dict]:
    items = boto3.client("dynamodb").scan(TableName=USAGE_TABLE)["Items"]
    return [item for item in items if item["pk"]["S"].startswith(prefix)]


def test_routes_without_a_key_keep_no_idempotency_record_and_count_nothing(handler):
    replay = {"Idempotency-Key": f"anonymous-{uuid.uuid4()}"}
    for path, resource in [("/", "/"), ("/docs", "/docs"), ("/static/app.js", "/static/{name}")]:
        for _ in range(2):
            answer = call(handler, "GET", path, headers=replay, key_id=None, resource=resource)
            assert answer["statusCode"] == 200 and header(answer, "Idempotent-Replayed") is None
    assert _items_with_prefix("idem#anonymous") == [] and _items_with_prefix("usage#anonymous") == []
    stored = boto3.client("s3").list_objects_v2(Bucket=RESULTS_BUCKET, Prefix="idempotency/anonymous")
    assert stored.get("KeyCount", 0) == 0


def test_an_answer_ready_after_the_gateways_29_s_is_a_504_and_not_charged(handler, key_id):
    from tests.api.conftest import rest_event

    before = usage_today(key_id)
    event = rest_event(
        "POST", "/v1/cutout", body=small_png(), headers={"Content-Type": "image/png"}, key_id=key_id
    )
    event["requestContext"]["requestTimeEpoch"] = int((time.time() - 28) * 1000)  # received 28 s ago
    answer = handler(event, LambdaContext())
    assert answer["statusCode"] == 504 and answer_json(answer)["error"]["code"] == "deadline_exceeded"
    assert usage_today(key_id) == {"calls": before["calls"] + 1, "charged": before["charged"]}


def test_a_preset_answers_its_check_in_the_json_and_in_a_header(handler, key_id):
    answer = post_cutout(handler, key_id, query={"return": "base64", "preset": "ebay", "shadow": "drop"})
    assert answer["statusCode"] == 200
    body = answer_json(answer)
    assert body["width"] == body["height"] == 1600 and body["image"]["content_type"] == "image/jpeg"
    assert body["check"]["preset"] == "ebay" and {r["rule"] for r in body["check"]["rules"]} >= {
        "long_side",
        "cut_by_photo",
        "enlargement",
        "shadow_inside",
    }
    assert body["enlargement"] > 1
    binary = post_cutout(handler, key_id, query={"return": "binary", "preset": "ebay"})
    assert float(header(binary, "X-Alphacut-Enlargement")) == body["enlargement"]
    assert header(binary, "X-Alphacut-Check") in ("ebay passed",) or header(
        binary, "X-Alphacut-Check"
    ).startswith("ebay failed: ")


def test_a_shadow_value_out_of_range_is_a_400_naming_the_field_and_limit(handler, key_id):
    answer = post_cutout(handler, key_id, query={"shadow": "cast", "shadow_elevation": "89"})
    assert answer["statusCode"] == 400
    error = answer_json(answer)["error"]
    assert error["field"] == "shadow_elevation" and error["limit"] == [5, 85] and "85" in error["message"]


def test_a_plans_model_runs_where_a_call_names_none_and_a_named_model_wins(handler):
    from alphacut.aws.ledger.plans import Plan

    from tests.api.conftest import KEY_PLANS

    KEY_PLANS["preview-key"] = Plan("plan-previews", "previews", None, 100.0, 200, model="u2netp")
    unnamed = post_cutout(handler, "preview-key", query={"return": "base64"})
    assert unnamed["statusCode"] == 200 and answer_json(unnamed)["model"] == "u2netp"
    named = post_cutout(handler, "preview-key", query={"return": "base64", "model": "isnet"})
    assert answer_json(named)["model"] == "isnet"


def test_the_references_are_built_once_per_container_however_often_they_are_called(
    handler, key_id, monkeypatch
):
    from alphacut.api import app

    built = []
    real = app.build_openapi
    monkeypatch.setattr(app, "build_openapi", lambda *args: built.append(args[2]) or real(*args))
    app.reference_text.cache_clear()
    for _ in range(3):
        page = call(handler, "GET", "/docs", key_id=None, resource="/docs")
        native = call(handler, "GET", "/v1/openapi.json", key_id=key_id, resource="/v1/openapi.json")
        removebg = call(handler, "GET", "/v1.0/openapi.json", key_id=key_id, resource="/v1.0/openapi.json")
        assert page["statusCode"] == native["statusCode"] == removebg["statusCode"] == 200
    assert sorted(built) == ["alphacut", "alphacut", "alphacut: remove.bg's API"]  # /docs, native, remove.bg
    assert "/v1.0/removebg" in answer_json(removebg)["paths"] and "/v1/cutout" in answer_json(native)["paths"]
    assert "/v1/cutout" in decoded_body(page).decode()


def test_a_keys_unpaid_model_runs_past_the_days_budget_close_its_image_routes_not_its_reads(
    handler, monkeypatch
):
    import dataclasses

    from alphacut.api import services

    from tests.api.conftest import KEY_PLANS, STARTER

    key = f"unpaid-{uuid.uuid4().hex[:8]}"
    KEY_PLANS[key] = STARTER
    monkeypatch.setattr(services, "SETTINGS", dataclasses.replace(services.SETTINGS, unpaid_runs_per_day=2))
    for _ in range(2):  # a picture with no subject: the model runs, nothing is charged
        answer = post_cutout(handler, key, body=blank_png(), query={"return": "base64"})
        assert answer["statusCode"] == 200 and answer_json(answer)["found"] is False
    refused = post_cutout(handler, key, query={"return": "base64"})
    error = answer_json(refused)["error"]
    assert refused["statusCode"] == 429 and error["code"] == "unpaid_runs_spent" and error["limit"] == 2
    assert 0 < int(header(refused, "Retry-After")) <= 86400
    assert call(handler, "GET", "/v1/usage", key_id=key)["statusCode"] == 200  # reads stay open
    other = f"unpaid-{uuid.uuid4().hex[:8]}"
    KEY_PLANS[other] = STARTER
    assert post_cutout(handler, other, query={"return": "base64"})["statusCode"] == 200  # its own budget
    today = time.strftime("%Y-%m-%d", time.gmtime())
    item = {"pk": {"S": f"unpaid#{key}"}, "sk": {"S": today}}
    runs = boto3.client("dynamodb").get_item(TableName=USAGE_TABLE, Key=item)
    assert runs["Item"]["runs"]["N"] == "2"  # one write an unpaid run, none for the refusal


def test_a_task_submission_past_the_days_unpaid_runs_is_refused_whoever_counted_them(handler, monkeypatch):
    # a blank task's model runs in the task functions, whose counts this container never sees:
    # the submission reads the count (the count written here stands for theirs)
    import dataclasses

    from alphacut.api import services
    from alphacut.aws.ledger.limits import KeyLimits

    from tests.api.conftest import KEY_PLANS, STARTER

    key = f"unpaid-tasks-{uuid.uuid4().hex[:8]}"
    KEY_PLANS[key] = STARTER
    monkeypatch.setattr(services, "SETTINGS", dataclasses.replace(services.SETTINGS, unpaid_runs_per_day=2))
    limits = KeyLimits(USAGE_TABLE)
    for _ in range(2):
        limits.count_unpaid_run(key, 0)  # what TaskEnds.finish writes for a task with no subject
    refused = call(handler, "POST", "/v1/tasks", body=blank_png(), key_id=key, resource="/v1/tasks",
                   headers={"Content-Type": "image/png"})  # fmt: skip
    error = answer_json(refused)["error"]
    assert refused["statusCode"] == 429 and (error["code"], error["limit"]) == ("unpaid_runs_spent", 2)


def test_every_native_answer_says_its_confidence_whether_it_is_unsure_and_why(handler, key_id):
    body = answer_json(post_cutout(handler, key_id, query={"return": "base64"}))
    assert 0.0 <= body["confidence"] <= 1.0 and isinstance(body["unsure"], bool)
    assert isinstance(body["reasons"], list)
    binary = post_cutout(handler, key_id, query={"return": "binary"})
    assert float(header(binary, "X-Alphacut-Confidence")) == body["confidence"]
    assert header(binary, "X-Alphacut-Unsure").split(":")[0] == str(body["unsure"]).lower()
    for route in ("/v1/selfie", "/v1/costume"):
        answer = call(
            handler,
            "POST",
            route,
            body=small_png(),
            headers={"Content-Type": "image/png"},
            query={"return": "base64"},
            key_id=key_id,
        )
        said = answer_json(answer)
        assert answer["statusCode"] == 200 and {"confidence", "unsure", "reasons"} <= said.keys(), route
