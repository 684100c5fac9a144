"""The OpenAPI document and the app's route table describe the same API: every route the app
registers (native, vendor-compatible, the page) is documented, and every documented route exists."""

import re

import pytest
from alphacut.api import app as api_app
from alphacut.api.openapi import build_openapi
from openapi_spec_validator import validate

METHODS = {"get", "post", "put", "patch", "delete"}


def normalised(path: str) -> str:
    """Powertools' <name> as OpenAPI's {name}; a trailing slash matches either way in the resolver."""
    return re.sub(r"<(\w+)>", r"{\1}", path).rstrip("/") or "/"


def registered_routes() -> set[tuple[str, str]]:
    routes = api_app.app._static_routes + api_app.app._dynamic_routes
    return {(normalised(route.path), route.method.lower()) for route in routes}


def documented_routes() -> set[tuple[str, str]]:
    document = build_openapi(api_app.ALL_ROUTES, None)
    return {
        (normalised(path), method)
        for path, ops in document["paths"].items()
        for method in ops
        if method in METHODS
    }


def test_every_registered_route_is_documented():
    assert registered_routes() - documented_routes() == set()


def test_every_documented_route_is_registered():
    assert documented_routes() - registered_routes() == set()


def test_vendor_routes_are_listed_under_their_own_tag():
    document = build_openapi(api_app.ROUTES + api_app.VENDOR_ROUTES + api_app.REMOVEBG_ROUTES, None)
    vendor_paths = {doc.path for doc in api_app.VENDOR_ROUTES + api_app.REMOVEBG_ROUTES}
    for path, ops in document["paths"].items():
        tags = {tag for method, op in ops.items() if method in METHODS for tag in op.get("tags", [])}
        assert tags == ({"vendor-compatible"} if path in vendor_paths else {"native"}), path


DOCUMENTS = {
    "native": api_app.ROUTES + api_app.VENDOR_ROUTES + api_app.billing.ROUTES,
    "remove.bg": api_app.REMOVEBG_ROUTES,
}


@pytest.mark.parametrize("api", DOCUMENTS)
def test_each_document_is_valid_openapi_3_1(api):
    validate(build_openapi(DOCUMENTS[api], "https://abc.execute-api.eu-west-1.amazonaws.com/prod"))


@pytest.mark.parametrize("api", DOCUMENTS)
def test_every_path_parameter_is_declared(api):
    for path, operations in build_openapi(DOCUMENTS[api])["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for operation in operations.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, path


def test_key_routes_list_the_gateways_refusals_with_their_bodies():
    document = build_openapi(DOCUMENTS["native"])
    cutout = document["paths"]["/v1/cutout"]["post"]["responses"]
    assert {"400", "401", "404", "409", "413", "415", "422", "429", "500", "502", "504"} <= set(cutout)
    assert cutout["401"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "Retry-After" in cutout["429"]["headers"]
    assert "X-Alphacut-Width" in cutout["200"]["headers"]
    removebg = build_openapi(DOCUMENTS["remove.bg"])["paths"]["/v1.0/removebg"]["post"]["responses"]
    assert {"402", "403", "429"} <= set(removebg) and "401" not in removebg
    assert {"X-Credits-Charged", "X-Max-Width"} <= set(removebg["200"]["headers"])


def test_request_bodies_name_their_required_fields():
    paths = build_openapi(DOCUMENTS["native"])["paths"]
    aidge = paths["/ai/image/cut/out"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert aidge["required"] == ["backGroundType"]
    assert aidge["description"] == "one of imageUrl, imageBase64 is required"
    selfie = paths["/jdai/SelfieSeg"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert selfie["required"] == ["image"]
    cutout = paths["/v1/cutout"]["post"]["requestBody"]["content"]
    assert {"image/jpeg", "multipart/form-data", "application/json"} <= set(cutout)
    # a touch-up's result_id stands for the image (alphacut.touchup)
    touch_up = "one of image_base64, image_url, result_id is required"
    assert cutout["application/json"]["schema"]["description"] == touch_up
