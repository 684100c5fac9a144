"""JD NeuHub "Selfie Segmentation": ``POST /jdai/SelfieSeg`` with ``{"image": base64}``.

JPEG/BMP/PNG/GIF, 50x50 to 1024x1024 px, under 2 MB. Answer ``{code, charge, remain, msg, result:
{status, message, image, used_time}}``; ``charge``/``remain`` are filled by the metering. Business
status codes (the document lists them elsewhere; these are ours): 1000 ok, 1001 bad parameter,
1002 image too large or too small, 1003 format not accepted, 1004 damaged image, 1005 internal.
"""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from alphacut.api.openapi import BASE64_IMAGE, JSON, OBJECT, STRING, RouteDoc
from alphacut.api.request import decode_base64_image, parse_json_object, raw_body
from alphacut.api.responses import json_response
from alphacut.api.vendors.common import Envelope, error_message, pipeline_with, vendor_answer
from alphacut.errors import (
    CorruptImage,
    ImageTooLarge,
    ImageTooSmall,
    InvalidOption,
    UnsupportedImageFormat,
    UnsupportedMediaType,
)
from alphacut.options import CutoutOptions, SubjectType
from alphacut.settings import ImageLimits

router = Router()
LIMITS = ImageLimits(
    max_bytes=2 * 1024 * 1024 - 1,
    max_side=1024,
    max_pixels=1024 * 1024,
    min_side=50,
    formats=frozenset({"jpeg", "bmp", "png", "gif"}),
)
STATUS_CODES = [
    (InvalidOption, 1001),
    (ImageTooLarge, 1002),
    (ImageTooSmall, 1002),
    (UnsupportedImageFormat, 1003),
    (UnsupportedMediaType, 1003),
    (CorruptImage, 1004),
]


def business_status(error: Exception) -> int:
    return next((code for kind, code in STATUS_CODES if isinstance(error, kind)), 1005)


def _envelope(status: int, message: str, image: str = "", used_time: int = 0) -> dict[str, Any]:
    return {
        "code": "10000",
        "charge": False,
        "remain": 0,
        "msg": "查询成功",
        "result": {"status": status, "message": message, "image": image, "used_time": used_time},
    }


ENVELOPE = Envelope(lambda error, status, rid: _envelope(business_status(error), error_message(error)))


def _image_field(event: dict[str, Any]) -> str:
    document = parse_json_object(raw_body(event), ': send {"image": "<base64>"}')
    if not isinstance(document.get("image"), str) or not document["image"]:
        raise InvalidOption("is required: the picture as a base64 string", field="image")
    return str(document["image"])


@router.post("/jdai/SelfieSeg")
def jd_selfie() -> Response[Any]:
    def build(request_id: str) -> Response[Any]:
        data = decode_base64_image(_image_field(router.current_event.raw_event), LIMITS.max_bytes, "image")
        result = pipeline_with(LIMITS).run(data, CutoutOptions(type=SubjectType.PERSON))
        router.append_context(empty_result=not result.found)
        picture = base64.b64encode(result.single_image[0]).decode("ascii")
        return json_response(
            200, _envelope(1000, "ok", picture, round(result.timings.total)), {"X-Request-Id": request_id}
        )

    return vendor_answer(router, build, ENVELOPE)


# ---- the contract's document (the OpenAPI document's operations for this module's routes) ----
JD_SELFIE = {
    "type": "object",
    "required": ["code", "result"],
    "properties": {
        "code": STRING,
        "charge": {"type": "boolean"},
        "remain": {},
        "msg": STRING,
        "result": OBJECT,
    },
}

ROUTES = [
    RouteDoc(
        "/jdai/SelfieSeg",
        "post",
        "JD NeuHub selfie segmentation",
        "JSON {image: base64}; answers "
        "{code, charge, remain, msg, result: {status, message, image, used_time}}.",
        tag="vendor-compatible",
        body={
            JSON: {
                "type": "object",
                "properties": {"image": {**BASE64_IMAGE, "minLength": 1}},
                "required": ["image"],
            }
        },
        answer={JSON: JD_SELFIE},
        errors=JD_SELFIE,
    ),
]
