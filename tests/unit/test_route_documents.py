"""The OpenAPI document and the app's route table describe the same API: every route the app
registers (native, vendor-compatible, the page) is documented, and every documented route exists."""

import re

from alphacut.api import app as api_app
from alphacut.api.openapi import build_openapi

METHODS = {"get", "post", "put", "patch", "delete"}


def normalised(path: str) -> str:
    """Powertools' <name> as OpenAPI's {name}; a trailing slash matches either way in the resolver."""
    return re.sub(r"<(\w+)>", r"{\1}", path).rstrip("/") or "/"


def registered_routes() -> set[tuple[str, str]]:
    routes = api_app.app._static_routes + api_app.app._dynamic_routes
    return {(normalised(route.path), route.method.lower()) for route in routes}


def documented_routes() -> set[tuple[str, str]]:
    document = build_openapi(api_app.ROUTES + api_app.VENDOR_ROUTES, None)
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
    document = build_openapi(api_app.ROUTES + api_app.VENDOR_ROUTES, None)
    vendor_paths = {doc.path for doc in api_app.VENDOR_ROUTES}
    for path, ops in document["paths"].items():
        tags = {tag for method, op in ops.items() if method in METHODS for tag in op.get("tags", [])}
        assert tags == ({"vendor-compatible"} if path in vendor_paths else {"native"}), path
