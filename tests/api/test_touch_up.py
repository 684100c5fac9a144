"""A touch-up (issue 91): a delivered result's matte is kept 24 h under its ``result_id``; a later
call of the same account with ``result_id`` and ``refine`` strokes runs no model, is charged 0 and
makes the whole result again. In process, through the real handler, S3 and DynamoDB in moto."""

from __future__ import annotations

import base64
import io
import json
import time
import uuid

import boto3
import numpy as np
import pytest
from alphacut.aws.kept_mattes import PREFIX
from alphacut.aws.keys.authorizer import Caller
from alphacut.aws.ledger.credits import CreditLedger
from PIL import Image

from tests.api.conftest import (
    CREDITS_PLAN,
    KEY_CALLERS,
    KEY_PLANS,
    RESULTS_BUCKET,
    STARTER,
    USAGE_TABLE,
    answer_json,
    call,
    header,
)
from tests.api.test_routes_in_process import small_png, usage_today

# the small photo is 96 x 96: grey, a red square from 24 to 72; strokes are drawn at twice its
# size (scaled to it): a keep stroke on the grey, an erase stroke on the red
KEEP = (8, 8, 20, 20)  # in the photo's pixels: left, top, right, bottom
ERASE = (36, 36, 60, 60)


def strokes_png(scale: int = 2) -> bytes:
    """Transparent everywhere but a white keep stroke and a black erase stroke."""
    strokes = Image.new("RGBA", (96 * scale, 96 * scale), (0, 0, 0, 0))
    strokes.paste((255, 255, 255, 255), tuple(v * scale for v in KEEP))
    strokes.paste((0, 0, 0, 255), tuple(v * scale for v in ERASE))
    buffer = io.BytesIO()
    strokes.save(buffer, "PNG")
    return buffer.getvalue()


def post_json(handler, key_id: str, **body) -> dict:
    return call(
        handler,
        "POST",
        "/v1/cutout",
        body=json.dumps({"return": "base64", **body}),
        headers={"Content-Type": "application/json"},
        key_id=key_id,
    )


def cut_out(handler, key_id: str, **options) -> dict:
    answer = post_json(handler, key_id, image_base64=base64.b64encode(small_png()).decode(), **options)
    assert answer["statusCode"] == 200, answer_json(answer)
    return answer_json(answer)


def alpha_of(body: dict) -> np.ndarray:
    picture = Image.open(io.BytesIO(base64.b64decode(body["image"]["base64"])))
    return np.asarray(picture.convert("RGBA"))[..., 3].astype(np.float32) / 255.0


def under(alpha: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    return alpha[box[1] : box[3], box[0] : box[2]]


@pytest.fixture(scope="module")
def credit_key(moto_aws) -> str:
    key_id = f"touch-up-{uuid.uuid4().hex[:8]}"
    KEY_PLANS[key_id] = CREDITS_PLAN
    ledger = CreditLedger(USAGE_TABLE)
    ledger.open(key_id)
    ledger.top_up(key_id, 20 * 1000, reference="touch-up")
    return key_id


@pytest.fixture(scope="module")
def delivered(handler, credit_key) -> dict:
    """One paid cutout of the small photo (its answer), which the touch-ups start from: the
    model runs once for them all."""
    return cut_out(handler, credit_key)


@pytest.fixture
def no_model_runs(handler, monkeypatch):
    """Any model run from here on fails the test."""
    from alphacut.api import services

    def refused(*args, **kwargs):
        raise AssertionError("a touch-up ran a model")

    monkeypatch.setattr(services.pipeline(), "infer_mattes", refused)


def test_a_touch_up_keeps_under_white_erases_under_black_and_charges_nothing(
    handler, credit_key, delivered, request
):
    first = delivered
    assert first["charge"] > 0 and first["result_id"].startswith("r_")
    model_alpha = alpha_of(first)
    assert under(model_alpha, KEEP).max() < 0.5 and under(model_alpha, ERASE).min() > 0.5  # what to fix
    balance = CreditLedger(USAGE_TABLE).balance(credit_key)
    request.getfixturevalue("no_model_runs")

    touched = post_json(
        handler,
        credit_key,
        result_id=first["result_id"],
        refine_base64=base64.b64encode(strokes_png()).decode(),
    )

    assert touched["statusCode"] == 200, answer_json(touched)
    body = answer_json(touched)
    alpha = alpha_of(body)
    assert under(alpha, KEEP).min() >= 0.98 and under(alpha, ERASE).max() <= 0.02
    assert (alpha[76:, 76:] <= 0.02).all() and (alpha[26:34, 62:70] >= 0.98).all()  # untouched: as before
    assert body["charge"] == 0 and header(touched, "X-Alphacut-Charge") == "0"
    assert CreditLedger(USAGE_TABLE).balance(credit_key) == balance and body["remain"] == first["remain"]
    assert body["result_id"] == first["result_id"] and "confidence" in body  # the verdict, made again


def test_a_touch_up_redoes_the_compose_with_its_own_options_as_a_multipart_upload(
    handler, credit_key, delivered, no_model_runs
):
    first, key_id = delivered, credit_key
    charged = usage_today(key_id)["charged"]
    boundary = "touchup-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="result_id"\r\n\r\n{first["result_id"]}\r\n',
        f'--{boundary}\r\nContent-Disposition: form-data; name="bg_color"\r\n\r\n#0000ff\r\n',
        f'--{boundary}\r\nContent-Disposition: form-data; name="format"\r\n\r\npng\r\n',
    ]
    body = (
        "".join(parts).encode()
        + (
            f'--{boundary}\r\nContent-Disposition: form-data; name="refine"; filename="s.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + strokes_png(1)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    answer = call(
        handler,
        "POST",
        "/v1/cutout",
        body=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "Accept": "image/*"},
        key_id=key_id,
    )
    assert answer["statusCode"] == 200 and header(answer, "Content-Type") == "image/png"
    assert header(answer, "X-Alphacut-Result-Id") == first["result_id"]
    picture = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["body"]))).convert("RGBA"), np.int16)
    assert (abs(under(picture, ERASE) - (0, 0, 255, 255)) <= 5).all()  # erased: the new background shows
    assert (abs(under(picture, KEEP) - (128, 128, 128, 255)) <= 5).all()  # kept: the photo's grey
    assert usage_today(key_id)["charged"] == charged


def test_another_accounts_result_id_answers_404_and_so_does_a_test_key_of_the_same_account(
    handler, credit_key, delivered, no_model_runs
):
    stranger, sandbox = f"stranger-{uuid.uuid4().hex[:8]}", f"sandbox-{uuid.uuid4().hex[:8]}"
    KEY_CALLERS[stranger] = Caller(stranger, "another shop", STARTER, account="another-account")
    # a test key's results are kept apart: the account's paid results are not its to make again
    KEY_CALLERS[sandbox] = Caller(sandbox, "the same shop", CREDITS_PLAN, account=credit_key, test=True)
    strokes = base64.b64encode(strokes_png()).decode()
    for key in (stranger, sandbox):
        answer = post_json(handler, key, result_id=delivered["result_id"], refine_base64=strokes)
        assert answer["statusCode"] == 404, answer_json(answer)
        error = answer_json(answer)["error"]
        assert error["code"] == "not_found" and error["field"] == "result_id"


def test_a_refine_without_result_id_is_charged_once_with_the_strokes_on_its_fresh_matte(handler, credit_key):
    ledger = CreditLedger(USAGE_TABLE)
    balance, charged = ledger.balance(credit_key), usage_today(credit_key)["charged"]
    body = cut_out(handler, credit_key, refine_base64=base64.b64encode(strokes_png()).decode())
    alpha = alpha_of(body)
    assert under(alpha, KEEP).min() >= 0.98 and under(alpha, ERASE).max() <= 0.02
    price = body["charge"]
    assert price > 0 and ledger.balance(credit_key) == balance - price * 1000
    assert usage_today(credit_key)["charged"] == charged + 1


def test_a_result_past_its_24_hours_answers_410_though_s3_still_holds_it(
    handler, credit_key, delivered, no_model_runs
):
    s3 = boto3.client("s3")
    key = PREFIX + delivered["result_id"]
    kept = s3.head_object(Bucket=RESULTS_BUCKET, Key=key)["Metadata"]
    assert kept["account"] == credit_key
    assert int(kept["expires-at"]) - time.time() == pytest.approx(24 * 3600, abs=120)
    # the same result a day later: its own expiry past (S3's lifecycle deletes it up to a day later)
    late = f"r_{uuid.uuid4().hex}"
    s3.copy_object(
        Bucket=RESULTS_BUCKET,
        Key=PREFIX + late,
        CopySource={"Bucket": RESULTS_BUCKET, "Key": key},
        Metadata={**kept, "expires-at": str(int(time.time()) - 1)},
        MetadataDirective="REPLACE",
    )
    assert post_json(handler, credit_key, result_id=delivered["result_id"])["statusCode"] == 200
    answer = post_json(handler, credit_key, result_id=late)
    assert answer["statusCode"] == 410
    assert answer_json(answer)["error"]["code"] == "result_expired"


def test_the_costume_route_refuses_a_touch_up_naming_the_field_and_tasks_check_the_id_first(
    handler, delivered, credit_key
):
    # a costume result is not kept; a task's touch-up of an id no result of this account has is a
    # 404 when submitted, not a failed task later (tests/e2e/test_tasks.py runs one to its end)
    touch_up = {
        "result_id": delivered["result_id"],
        "refine_base64": base64.b64encode(strokes_png()).decode(),
    }
    unknown = {**touch_up, "result_id": "r_" + "0" * 32}
    jpeg = io.BytesIO()
    Image.new("RGB", (96, 96)).save(jpeg, "JPEG")
    not_png = {**touch_up, "refine_base64": base64.b64encode(jpeg.getvalue()).decode()}
    for route, body, status, field in (
        ("/v1/costume", touch_up, 400, "result_id"),
        ("/v1/tasks", unknown, 404, "result_id"),
        ("/v1/tasks", not_png, 400, "refine"),  # refused when submitted, as the sync route refuses it
    ):
        answer = call(
            handler,
            "POST",
            route,
            body=json.dumps(body),
            headers={"Content-Type": "application/json"},
            key_id=credit_key,
        )
        assert answer["statusCode"] == status, (route, answer_json(answer))
        assert answer_json(answer)["error"]["field"] == field, route


def _png(size: tuple[int, int], colour: tuple[int, int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGBA", size, colour).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_a_call_whose_strokes_erase_everything_keeps_nothing_to_touch_up_for_free(handler, credit_key):
    # a found-nothing result is not charged: had its model matte been kept, a touch-up without strokes
    # would deliver the whole cutout for nothing (the attack: erase all, then touch up)
    erased = cut_out(handler, credit_key, refine_base64=_png((96, 96), (0, 0, 0, 255)))
    assert erased["found"] is False and erased["charge"] == 0 and erased.get("result_id") is None


def test_strokes_over_the_whole_photo_or_a_bad_background_are_answered_without_a_free_model_run(
    handler, credit_key, monkeypatch
):
    from alphacut.api import services

    covered = cut_out(handler, credit_key, refine_base64=_png((1, 1), (255, 255, 255, 255)))  # scaled up
    assert covered["found"] is True and covered["charge"] > 0  # kept whole: delivered and charged

    def refused(*args, **kwargs):
        raise AssertionError("the model ran for a call refused afterwards")

    monkeypatch.setattr(services.pipeline(), "infer_mattes", refused)
    photo = base64.b64encode(small_png()).decode()
    for extra, field in (
        ({"refine_base64": base64.b64encode(small_png()[:40]).decode()}, "refine"),
        ({"bg_image_base64": base64.b64encode(b"not a picture at all").decode()}, "bg_image_file"),
    ):
        answer = post_json(handler, credit_key, image_base64=photo, **extra)
        assert 400 <= answer["statusCode"] < 500, answer_json(answer)
        assert answer_json(answer)["error"]["field"] == field


def test_a_test_keys_touch_ups_are_its_accounts_test_results(handler, credit_key):
    sandbox = f"sandbox-{uuid.uuid4().hex[:8]}"
    KEY_CALLERS[sandbox] = Caller(
        sandbox, "a shop", CREDITS_PLAN, ("images",), account=f"acct-{sandbox}", test=True
    )
    made = cut_out(handler, sandbox)
    left = int(header(post_json(handler, sandbox, result_id=made["result_id"]), "X-Alphacut-Remain"))
    again = int(header(post_json(handler, sandbox, result_id=made["result_id"]), "X-Alphacut-Remain"))
    assert again == left - 1  # each touch-up takes one of the day's test results


def test_an_account_whose_last_credits_paid_for_the_result_may_still_touch_it_up(handler):
    # a touch-up is charged 0: the refusal of a key that cannot pay waits until its body says the
    # call is no touch-up, and a new photo of the same key is still refused (402) before any model runs
    key_id = f"spent-{uuid.uuid4().hex[:8]}"
    KEY_PLANS[key_id] = CREDITS_PLAN
    ledger = CreditLedger(USAGE_TABLE)
    ledger.open(key_id)
    ledger.top_up(key_id, 1000, reference="exactly one cutout")  # the plain cutout's price: 1 credit
    first = cut_out(handler, key_id)
    assert first["charge"] == 1 and ledger.balance(key_id) == 0

    touched = post_json(
        handler, key_id, result_id=first["result_id"], refine_base64=base64.b64encode(strokes_png()).decode()
    )

    assert touched["statusCode"] == 200, answer_json(touched)
    assert answer_json(touched)["charge"] == 0 and ledger.balance(key_id) == 0
    photo = base64.b64encode(small_png()).decode()
    again = post_json(handler, key_id, image_base64=photo)
    assert again["statusCode"] == 402, answer_json(again)
    assert answer_json(again)["error"]["field"] == "credits"
    # nothing fetched for a result this key has not made: the 404 comes before any download
    made_up = post_json(handler, key_id, result_id="r_" + "1" * 32, bg_image_url="http://10.0.0.1/bg.jpg")
    assert made_up["statusCode"] == 404, answer_json(made_up)
    # the 402 told once the body was read is not the answer an Idempotency-Key keeps: after a top-up
    # the same request runs
    retried = {"Content-Type": "application/json", "Idempotency-Key": f"top-up-then-{key_id}"}
    body = json.dumps({"return": "base64", "image_base64": photo})
    refused = call(handler, "POST", "/v1/cutout", body=body, headers=retried, key_id=key_id)
    assert refused["statusCode"] == 402
    ledger.top_up(key_id, 1000, reference="a top-up")
    paid = call(handler, "POST", "/v1/cutout", body=body, headers=retried, key_id=key_id)
    assert paid["statusCode"] == 200 and header(paid, "Idempotent-Replayed") is None, answer_json(paid)


def test_one_result_opens_as_many_free_touch_ups_as_the_deployment_allows_then_a_409(
    handler, credit_key, monkeypatch
):
    import dataclasses

    from alphacut.api import services

    monkeypatch.setattr(services, "SETTINGS", dataclasses.replace(services.SETTINGS, touch_ups_per_result=2))
    result_id = cut_out(handler, credit_key)["result_id"]
    strokes = base64.b64encode(strokes_png()).decode()
    answers = [post_json(handler, credit_key, result_id=result_id, refine_base64=strokes) for _ in range(3)]
    assert [a["statusCode"] for a in answers] == [200, 200, 409], answer_json(answers[-1])
    error = answer_json(answers[-1])["error"]
    assert error["code"] == "touch_ups_spent" and error["field"] == "result_id" and error["limit"] == 2
    task = call(
        handler,
        "POST",
        "/v1/tasks",
        body=json.dumps({"result_id": result_id}),
        headers={"Content-Type": "application/json"},
        key_id=credit_key,
    )
    assert task["statusCode"] == 409, answer_json(task)  # a task's touch-up counts the same
