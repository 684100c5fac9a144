"""The page people try the service with (a cutout, tasks, usage) and the API reference, served by
the API itself from ``alphacut/web``: static files, no CDN, no key to load them, not metered. The
page sends the key the person pastes only as ``x-api-key`` to this API.

Usage (alphacut.api.app)::

    app.include_router(web.router)          # GET /, GET /static/<name>; the page carries public_prices()
    web.html_page(web.docs_html(build_openapi(routes)))   # GET /docs: the reference, the document inline
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from alphacut.api import services
from alphacut.errors import NotFound

router = Router()
WEB = Path(__file__).resolve().parents[1] / "web"
STATIC_TYPES = {
    "app.js": "application/javascript; charset=utf-8",
    "docs.js": "application/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
# Stripe.js's own hosts, where the page loads it from Stripe (its frames and its API)
STRIPE_FRAMES, STRIPE_API = "https://js.stripe.com https://hooks.stripe.com", "https://api.stripe.com"


@cache
def security_headers() -> dict[str, str]:
    """The page talks to this origin, and to Stripe.js's (its Billing tab) only; pictures may come
    from result links and image URLs."""
    from alphacut.billing.settings import STRIPE_JS, BillingSettings

    stripe_js = BillingSettings.from_env().stripe_js_url
    parts = urlsplit(stripe_js)
    stripe = f"{parts.scheme}://{parts.netloc}"
    frames, api = (STRIPE_FRAMES, f"{stripe} {STRIPE_API}") if stripe_js == STRIPE_JS else (stripe, stripe)
    return {
        "Content-Security-Policy": f"default-src 'self'; script-src 'self' {stripe}; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: https: http:; "
        f"connect-src 'self' {api}; frame-src {frames}; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


@cache
def read(name: str) -> bytes:
    return (WEB / name).read_bytes()


def _file(name: str, content_type: str) -> Response[Any]:
    return Response(
        status_code=200,
        content_type=content_type,
        body=read(name).decode("utf-8"),
        headers=dict(security_headers()),
    )


def public_prices() -> dict[str, Any]:
    """What a first visit is told before it has a key (``GET /v1/billing/config`` needs one): the
    price of a credit, of each kind of result (``CREDIT_PRICES``), the packs and the smallest
    purchase. The page's function has the first two in its own environment; currency, packs and
    minimum are the billing settings' (their defaults where this function is not given them), and
    the page replaces them with ``/v1/billing/config``'s once a key is in it."""
    from alphacut.billing.settings import BillingSettings

    billing = BillingSettings.from_env()
    return {
        "price_per_credit": str(billing.price_per_credit),
        "currency": billing.currency,
        "results": services.SETTINGS.credit_prices.table(),
        "packs": billing.packs,
        "min_credits": billing.smallest_purchase,
    }


@router.get("/")
def page() -> Response[Any]:
    """index.html with the public prices inline (a JSON data block: no script runs from it); a
    price setting the billing settings refuse leaves the block null (the page says to ask)."""
    try:
        known: dict[str, Any] | None = public_prices()
    except (ValueError, ArithmeticError):
        known = None
    prices = json.dumps(known).replace("</", "<\\/")
    html = read("index.html").decode("utf-8").replace("__PRICES__", prices)
    return html_page(html)


@router.get("/static/<name>")
def static(name: str) -> Response[Any]:
    if name not in STATIC_TYPES:
        raise NotFound(f"no file {name[:100]!r} here")
    return _file(name, STATIC_TYPES[name])


def docs_html(spec: dict[str, Any]) -> str:
    """docs.html with the OpenAPI document inline (no key needed to read the reference)."""
    inline = json.dumps(spec).replace("</", "<\\/")  # a string in the document cannot close the script
    return read("docs.html").decode("utf-8").replace("__OPENAPI__", inline)


def html_page(html: str) -> Response[Any]:
    return Response(
        status_code=200, content_type="text/html; charset=utf-8", body=html, headers=dict(security_headers())
    )
