"""The page people try the service with (a cutout, tasks, usage) and the API reference, served by
the API itself from ``alphacut/web``: static files, no CDN, no key to load them, not metered. The
page sends the key the person pastes only as ``x-api-key`` to this API.

Usage (alphacut.api.app)::

    app.include_router(web.router)          # GET /, GET /static/<name>
    web.html_page(web.docs_html(build_openapi(routes)))   # GET /docs: the reference, the document inline
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from alphacut.errors import NotFound

router = Router()
WEB = Path(__file__).resolve().parents[1] / "web"
STATIC_TYPES = {
    "app.js": "application/javascript; charset=utf-8",
    "docs.js": "application/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
# the page talks to this origin only; pictures may come from result links and image URLs
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob: https: http:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'",
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
        headers=dict(SECURITY_HEADERS),
    )


@router.get("/")
def page() -> Response[Any]:
    return _file("index.html", "text/html; charset=utf-8")


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
        status_code=200, content_type="text/html; charset=utf-8", body=html, headers=dict(SECURITY_HEADERS)
    )
