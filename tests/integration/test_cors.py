"""CORS and API Gateway's own answers on the local stack, as the template declares them for both
APIs: the preflight answered without a key and without a function, the allowed origin on every
answer (the functions', the gateway's refusals, unknown routes), the headers a page may read, and
methods no route has answered 403 in JSON as API Gateway does, not 501 in HTML."""

from __future__ import annotations

import pytest
import requests
from alphacut.api.cors import ANSWER_HEADERS

PAGE = "https://shop.example.com"


def preflight(stack, path: str, method: str = "POST") -> requests.Response:
    return requests.options(
        stack.url + path,
        headers={
            "Origin": PAGE,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "x-api-key,content-type,idempotency-key",
        },
        timeout=30,
    )


def every_route_path() -> list[str]:
    """Each path of both REST APIs in the translated template, its parameters filled in."""
    import re

    from alphacut_dev.template import translate_template

    apis = [r for r in translate_template()["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    return sorted(
        re.sub(r"\{[^}]+\}", "x1", path) for api in apis for path in api["Properties"]["Body"]["paths"]
    )


# API Gateway answers a mock preflight 500 under the binary media type */* unless it converts the
# request to text: the local gateway applies that rule (alphacut_dev.local.apigateway_integrations)
@pytest.mark.parametrize("path", every_route_path())
def test_the_preflight_is_answered_without_a_key(stack, path):
    response = preflight(stack, path)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"x-api-key", "idempotency-key", "content-type"} <= allowed
    assert {"GET", "POST"} <= set(response.headers["Access-Control-Allow-Methods"].split(","))


def test_function_answers_carry_the_origin_and_expose_their_headers(api, photo):
    response = api.post(
        "/v1/cutout",
        data=photo,
        headers={"Content-Type": "image/jpeg", "Accept": "image/png", "Origin": PAGE},
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert set(ANSWER_HEADERS) <= exposed
    assert {"X-Alphacut-Width", "X-Credits-Charged", "X-Width", "Retry-After"} <= exposed


def test_errors_from_the_function_carry_the_origin(api):
    response = api.post("/v1/cutout", data=b"not an image", headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 415 and response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("path,status", [("/v1/cutout", 401), ("/v1.0/removebg", 403)])
def test_a_bad_key_answer_carries_the_origin(stack, path, status):
    response = requests.post(stack.url + path, headers={"x-api-key": "wrong-key-00000000"}, timeout=30)
    assert response.status_code == status and response.headers["Access-Control-Allow-Origin"] == "*"


def test_the_native_gateway_refusal_names_its_request(stack):
    response = requests.get(stack.url + "/v1/usage", timeout=30)
    assert response.status_code == 401
    assert response.json()["request_id"] == response.headers["x-amzn-RequestId"]


def test_the_rate_refusal_carries_the_origin(default_key_api):
    import time

    time.sleep(2.5)  # the default key's bucket refills
    answers = [default_key_api.get("/v1/openapi.json") for _ in range(10)]
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.headers["Access-Control-Allow-Origin"] == "*" and refused.json()["request_id"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "TRACE", "PROPFIND", "OPTIONS"])
def test_a_method_or_path_no_route_has_is_403_json(api, method):
    path = "/v1/cutout" if method != "OPTIONS" else "/v1/no-such-route"
    response = api.request(method, path)
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"message": "Missing Authentication Token"}
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_head_is_answered_without_a_body(api):
    response = api.request("HEAD", "/v1/cutout")
    assert response.status_code == 403 and response.content == b""
