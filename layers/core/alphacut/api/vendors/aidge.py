"""Alibaba AIDGE "Image Background Removal": ``GET|POST /ai/image/cut/out``.

``imageUrl`` or ``imageBase64`` (base64 wins), 100x100 to 3000x3000 px; ``backGroundType``
WHITE_BACKGROUND (a JPEG on white) or TRANSPARENT (a PNG), required; ``targetWidth`` /
``targetHeight`` 100..3000 crop the blank margins and scale the subject to that size. Parameters
in the query string (GET) or a JSON / form body (POST). Answer ``{resCode, resMessage, success,
requestId, data: {imageUrl, width, height}}``; errors 700 invalid input (the message names the
field), 801 model failed, 500 system error, with the HTTP status of the problem.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from alphacut.api import services
from alphacut.api.openapi import BASE64_IMAGE, INTEGER, JSON, STRING, RouteDoc
from alphacut.api.request import decode_base64_image, read_body
from alphacut.api.responses import json_response
from alphacut.api.vendors.common import Envelope, error_message, pipeline_with, result_folder, vendor_answer
from alphacut.errors import AlphacutError, InvalidOption, ModelUnavailable
from alphacut.options import CutoutOptions, ImageFormat, empty_unset, parse_dimension
from alphacut.settings import ImageLimits
from alphacut.urlfetch import IMAGE_URL, parse_url

router = Router()
LIMITS = ImageLimits(max_side=3000, max_pixels=3000 * 3000, min_side=100)
# backGroundType -> the native format and background
BACKGROUNDS: dict[str, tuple[ImageFormat, tuple[int, int, int] | None]] = {
    "WHITE_BACKGROUND": (ImageFormat.JPG, (255, 255, 255)),
    "TRANSPARENT": (ImageFormat.PNG, None),
}
RESULT_CODES = [(ModelUnavailable, 801), (AlphacutError, 700)]


def _params(event: dict[str, Any]) -> dict[str, str]:
    params = dict(event.get("queryStringParameters") or {})
    if event.get("httpMethod") != "POST":
        return params
    params.update(read_body(event).fields)
    return params


def _error(error: Exception, status: int, request_id: str) -> dict[str, Any]:
    code = next((c for kind, c in RESULT_CODES if isinstance(error, kind)), 500)
    message = {700: "invalid input", 801: "model failed", 500: "system error"}[code]
    return {
        "resCode": code,
        "resMessage": f"{message}: {error_message(error)}",
        "success": False,
        "requestId": request_id,
        "data": None,
    }


ENVELOPE = Envelope(_error)  # its routes' failures, and the service's refusals before them


@router.get("/ai/image/cut/out")
@router.post("/ai/image/cut/out")
def aidge_cutout() -> Response[Any]:
    def build(request_id: str) -> Response[Any]:
        params = _params(router.current_event.raw_event)
        background = params.get("backGroundType", "").strip().upper()
        if background not in BACKGROUNDS:
            raise InvalidOption("is required: WHITE_BACKGROUND or TRANSPARENT", field="backGroundType")
        width = parse_dimension(params.get("targetWidth"), "targetWidth", 100, 3000)
        height = parse_dimension(params.get("targetHeight"), "targetHeight", 100, 3000)
        image_format, bg_color = BACKGROUNDS[background]
        options = CutoutOptions(
            target_width=width, target_height=height, format=image_format, bg_color=bg_color
        )
        engine = pipeline_with(LIMITS)
        engine.reserve(options)  # the price as asked, before the image is downloaded
        if params.get("imageBase64"):
            if params.get("imageUrl"):  # base64 wins, and the URL beside it must still be one
                settings = services.SETTINGS
                parse_url(
                    params["imageUrl"], settings.url_allowed_hosts, settings.url_allowed_ports, "imageUrl"
                )
            data = decode_base64_image(params["imageBase64"], LIMITS.max_bytes, "imageBase64")
        elif params.get("imageUrl"):
            data = services.SETTINGS.fetch(params["imageUrl"], LIMITS.max_bytes, field="imageUrl")
        else:
            raise InvalidOption("imageUrl or imageBase64 is required", field="imageUrl")
        result = engine.run(data, options)
        router.append_context(empty_result=not result.found)
        key = f"{result_folder(request_id)}/cutout.{options.format.value}"
        store = services.result_store(None, router.current_event.raw_event)
        link = store.put(key, *result.single_image)
        return json_response(
            200,
            {
                "resCode": 200,
                "resMessage": "success",
                "success": True,
                "requestId": request_id,
                "data": {"imageUrl": link.url, "width": result.width, "height": result.height},
            },
            {"X-Request-Id": request_id},
        )

    return vendor_answer(router, build, ENVELOPE)


# ---- the contract's document (the OpenAPI document's operations for this module's routes) ----
AIDGE_FIELDS: dict[str, dict[str, Any]] = {
    "imageUrl": empty_unset(IMAGE_URL),
    "imageBase64": BASE64_IMAGE,
    "backGroundType": {"type": "string", "enum": ["WHITE_BACKGROUND", "TRANSPARENT"]},
    "targetWidth": {"type": "integer", "minimum": 100, "maximum": 3000},
    "targetHeight": {"type": "integer", "minimum": 100, "maximum": 3000},
}

AIDGE_REQUEST = {
    "type": "object",
    "properties": AIDGE_FIELDS,
    "required": ["backGroundType"],
    "anyOf": [{"required": ["imageUrl"]}, {"required": ["imageBase64"]}],
}

AIDGE = {
    "type": "object",
    "required": ["resCode", "success", "requestId"],
    "properties": {
        "resCode": INTEGER,
        "resMessage": STRING,
        "success": {"type": "boolean"},
        "requestId": STRING,
        "data": {"type": ["object", "null"]},
    },
}

ROUTES = [
    RouteDoc(
        "/ai/image/cut/out",
        "post",
        "Alibaba AIDGE background removal",
        "imageUrl or imageBase64, backGroundType, targetWidth/targetHeight.",
        tag="vendor-compatible",
        body={
            JSON: AIDGE_REQUEST,
            "application/x-www-form-urlencoded": AIDGE_REQUEST,
            "multipart/form-data": AIDGE_REQUEST,
        },
        answer={JSON: AIDGE},
        errors=AIDGE,
    ),
    RouteDoc(
        "/ai/image/cut/out",
        "get",
        "Alibaba AIDGE background removal, parameters in the query string",
        "imageUrl, backGroundType, targetWidth/targetHeight (imageBase64 belongs in a POST body).",
        tag="vendor-compatible",
        query={
            **{name: schema for name, schema in AIDGE_FIELDS.items() if name != "imageBase64"},
            "imageUrl": IMAGE_URL,  # required here: given, and a URL
        },
        required_query=("imageUrl", "backGroundType"),
        answer={JSON: AIDGE},
        errors=AIDGE,
    ),
]
