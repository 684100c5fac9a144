"""Key scopes (alphacut.scopes), in process: the route table's scopes applied to the authorizer's
context before anything else runs, each refusal a 403 naming the scope, in the route's own contract."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from alphacut.aws.ledger.credits import CreditLedger
from alphacut.scopes import BILLING, IMAGES
from PIL import Image

from tests.api.conftest import CREDITS_PLAN, KEY_PLANS, KEY_SCOPES, answer_json, call

BILLING_CALLS = [
    ("POST", "/v1/billing/settings", json.dumps({"low_balance": 1})),
    ("POST", "/v1/billing/credits", json.dumps({"credits": 100})),
    ("GET", "/v1/billing/payments", ""),
    ("GET", "/v1/billing/settings", ""),
    ("POST", "/v1/billing/card", ""),
]


def scoped_key(*scopes: str) -> str:
    """A fresh credits key holding only ``scopes``, at 0."""
    key_id = f"scoped-{uuid.uuid4().hex[:8]}"
    KEY_PLANS[key_id], KEY_SCOPES[key_id] = CREDITS_PLAN, scopes
    CreditLedger("alphacut-api-tests-usage").open(key_id)
    return key_id


def photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(("method", "path", "body"), BILLING_CALLS)
def test_an_images_only_key_is_refused_every_billing_route_naming_the_scope(handler, method, path, body):
    key_id = scoped_key(IMAGES)
    answer = call(handler, method, path, body=body, key_id=key_id, resource=path)
    assert answer["statusCode"] == 403, answer
    error = answer_json(answer)["error"]
    assert error["code"] == "insufficient_scope" and error["scope"] == BILLING
    assert error["field"] == "x-api-key" and "billing" in error["message"]


def test_an_images_only_key_reads_its_balance_and_the_prices(handler):
    key_id = scoped_key(IMAGES)
    usage = call(handler, "GET", "/v1/usage", key_id=key_id, resource="/v1/usage")
    assert usage["statusCode"] == 200 and answer_json(usage)["balance"] == 0
    account = call(handler, "GET", "/v1.0/account", key_id=key_id, resource="/v1.0/account")
    assert account["statusCode"] == 200


def test_a_billing_only_key_is_refused_the_model_routes_each_in_its_own_contract(handler):
    key_id = scoped_key(BILLING)
    native = call(
        handler,
        "POST",
        "/v1/cutout",
        body=photo(),
        headers={"Content-Type": "image/png"},
        key_id=key_id,
        resource="/v1/cutout",
    )
    assert native["statusCode"] == 403 and answer_json(native)["error"]["scope"] == IMAGES
    removebg = call(
        handler,
        "POST",
        "/v1.0/removebg",
        body=json.dumps({"image_url": "https://example.com/a.png"}),
        headers={"Content-Type": "application/json"},
        key_id=key_id,
        resource="/v1.0/removebg",
    )
    assert removebg["statusCode"] == 403
    assert "errors" in answer_json(removebg)  # remove.bg's own error shape
    usage = call(handler, "GET", "/v1/usage", key_id=key_id, resource="/v1/usage")
    assert usage["statusCode"] == 403 and answer_json(usage)["error"]["scope"] == IMAGES
