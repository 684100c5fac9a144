"""JD Cloud "Image Matting": ``POST /api/cutout/`` with the raw image as the body.

Answer ``{code, msg, result: {status, message, requestid, cutout_image_url}}``: ``code`` "10000"
when the call went through, ``result.status`` 0 on success, else the HTTP status of the problem
(the document names no business codes), ``result.message`` what is wrong. The document's table says
``requestid`` and its example ``requestId``: both are sent.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from alphacut.api import services
from alphacut.api.openapi import JSON, OBJECT, RAW_IMAGE, STRING, RouteDoc
from alphacut.api.request import raw_body
from alphacut.api.responses import json_response
from alphacut.api.vendors.common import Envelope, error_message, result_folder, vendor_answer
from alphacut.errors import InvalidOption
from alphacut.options import CutoutOptions

router = Router()
SYSTEM_OK = "10000"


def _envelope(request_id: str, status: int, message: str, url: str | None = None) -> dict[str, Any]:
    result = {"status": status, "message": message, "requestid": request_id, "requestId": request_id}
    if url is not None:
        result["cutout_image_url"] = url
    return {"code": SYSTEM_OK, "msg": "success", "result": result}


ENVELOPE = Envelope(lambda error, status, rid: _envelope(rid, status, error_message(error)))


@router.post("/api/cutout/")
def jd_cutout() -> Response[Any]:
    def build(request_id: str) -> Response[Any]:
        data = raw_body(router.current_event.raw_event)
        if not data:
            raise InvalidOption("is empty: send the image bytes as the request body", field="body")
        result = services.pipeline().run(data, CutoutOptions())
        router.append_context(empty_result=not result.found)
        key = f"{result_folder(request_id)}/cutout.png"
        image, content_type = result.single_image  # the default options: a PNG cutout
        link = services.result_store(None, router.current_event.raw_event).put(key, image, content_type)
        return json_response(200, _envelope(request_id, 0, "success", link.url), {"X-Request-Id": request_id})

    return vendor_answer(router, build, ENVELOPE)


# ---- the contract's document (the OpenAPI document's operations for this module's routes) ----
JD_CUTOUT = {
    "type": "object",
    "required": ["code", "result"],
    "properties": {"code": STRING, "msg": STRING, "result": OBJECT},
}

ROUTES = [
    RouteDoc(
        "/api/cutout/",
        "post",
        "JD Cloud image matting",
        "The raw image as the body; answers "
        "{code, msg, result: {status, message, requestid, cutout_image_url}}.",
        tag="vendor-compatible",
        body=RAW_IMAGE,
        answer={JSON: JD_CUTOUT},
        errors=JD_CUTOUT,
    ),
]
