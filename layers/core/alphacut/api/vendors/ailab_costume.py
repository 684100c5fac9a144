"""AILabTools-style "Costume background removal":
``POST /api/cutout/general/apparel-background-removal`` (multipart ``image``).

JPEG/JPG/BMP/PNG, at most 5 MB, 50x50 to 3000x3000 px; ``cloth_class`` a comma list of tops,
coat, skirt, pants, bag, shoes, hat (default: all seven); ``return_form`` mask / whiteBK / unset
(4-channel PNG). Answer ``{request_id, log_id, error_code, error_msg, error_detail: {status_code,
code, code_message, message}, data: {elements: [{image_url}, {class_url: {...}}]}}``:
``image_url`` is the whole outfit; ``class_url`` has each class asked for, "" when the class is not
in the picture. URLs are valid 24 hours, as documented.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from alphacut.api import services
from alphacut.api.openapi import BINARY, INTEGER, JSON, OBJECT, STRING, RouteDoc
from alphacut.api.request import apply_return_form, header, parse_multipart, raw_body
from alphacut.api.responses import json_response
from alphacut.api.vendors.common import Envelope, error_message, pipeline_with, result_folder, vendor_answer
from alphacut.errors import AlphacutError, InvalidOption, UnsupportedMediaType
from alphacut.options import CutoutOptions
from alphacut.settings import ImageLimits

if TYPE_CHECKING:
    from alphacut.pipeline import CutoutResult

router = Router()
LIMITS = ImageLimits(
    max_bytes=5 * 1024 * 1024,
    max_side=3000,
    max_pixels=3000 * 3000,
    min_side=50,
    formats=frozenset({"jpeg", "bmp", "png"}),
)
URL_SECONDS = 24 * 3600


def _envelope(
    request_id: str, status: int = 200, code: str = "", message: str = "", data: dict[str, Any] | None = None
) -> dict[str, Any]:
    body = {
        "request_id": request_id,
        "log_id": request_id,
        "error_code": 0 if status == 200 else status,
        "error_msg": message,
        "error_detail": {"status_code": status, "code": code, "code_message": message, "message": message},
    }
    if data is not None:
        body["data"] = data
    return body


def _error(error: Exception, status: int, request_id: str) -> dict[str, Any]:
    code = error.code if isinstance(error, AlphacutError) else "internal_error"
    return _envelope(request_id, status, code, error_message(error))


ENVELOPE = Envelope(_error)  # its routes' failures, and the service's refusals before them


@router.post("/api/cutout/general/apparel-background-removal")
def ailab_costume() -> Response[Any]:
    def build(request_id: str) -> Response[Any]:
        event = router.current_event.raw_event
        content_type = header(event, "content-type")
        if content_type.split(";")[0].strip().lower() != "multipart/form-data":
            raise UnsupportedMediaType(
                "must be multipart/form-data with the picture in image", field="Content-Type"
            )
        files, fields = parse_multipart(content_type, raw_body(event))
        if not files.get("image"):
            raise InvalidOption("is required: the picture as a file", field="image")
        from alphacut.costume import SEED_GARMENTS, parse_garments

        garments = parse_garments(
            fields.get("cloth_class") or ",".join(g.value for g in SEED_GARMENTS), field="cloth_class"
        )
        params = apply_return_form({"return_form": fields["return_form"]} if "return_form" in fields else {})
        options = CutoutOptions.from_mapping(params)
        result = pipeline_with(LIMITS).cut_out_garments(files["image"], options, garments)
        router.append_context(empty_result=not result.outfit.found)
        store = services.result_store(URL_SECONDS, router.current_event.raw_event)
        folder = result_folder(request_id)

        def url(name: str, item: CutoutResult) -> str:
            data, content_type = item.single_image  # return_form asks for a mask or a cutout, never both
            extension = "jpg" if content_type == "image/jpeg" else content_type.split("/")[1]
            return store.put(f"{folder}/{name}.{extension}", data, content_type).url

        class_url = {
            g.garment.value: url(g.garment.value, g.result) if g.result is not None else ""
            for g in result.garments
        }
        data = {"elements": [{"image_url": url("outfit", result.outfit)}, {"class_url": class_url}]}
        return json_response(200, _envelope(request_id, data=data), {"X-Request-Id": request_id})

    return vendor_answer(router, build, ENVELOPE)


# ---- the contract's document (the OpenAPI document's operations for this module's routes) ----
AILAB = {
    "type": "object",
    "required": ["request_id", "error_code"],
    "properties": {
        "request_id": STRING,
        "log_id": STRING,
        "error_code": INTEGER,
        "error_msg": STRING,
        "data": OBJECT,
    },
}

ROUTES = [
    RouteDoc(
        "/api/cutout/general/apparel-background-removal",
        "post",
        "AILabTools-style costume background removal",
        "multipart image, cloth_class, return_form.",
        tag="vendor-compatible",
        body={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "image": BINARY,
                    "cloth_class": {
                        "type": "string",
                        "description": "comma list of tops, coat, skirt, pants, bag, shoes, hat",
                    },
                    "return_form": {"type": "string", "enum": ["mask", "whiteBK"]},
                },
                "required": ["image"],
            }
        },
        answer={JSON: AILAB},
        errors=AILAB,
    ),
]
