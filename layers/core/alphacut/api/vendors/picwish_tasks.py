"""PicWish-style segmentation tasks: ``POST /api/tasks/visual/segmentation`` and
``GET /api/tasks/visual/segmentation/{task_id}`` (key in ``X-API-KEY``).

Parameters: ``image_file`` or ``image_url``; ``sync`` 1 waits; ``type`` auto/person/object/stamp;
``return_type`` 1 url / 2 base64 / 3 binary (sync only); ``output_type`` 1 image+mask / 2 image /
3 mask; ``crop`` 0/1; ``format`` png/jpg; ``bg_color`` hex. The same task service as
``/v1/tasks``: states -8..4 as documented. Answers ``{status, message, data}``; errors
``{status, message}`` with the same HTTP status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from alphacut.api import services
from alphacut.api.credits import current_gate
from alphacut.api.metering import CHARGED_BY_TASK
from alphacut.api.openapi import BASE64_IMAGE, BINARY, FLAG, INTEGER, JSON, OBJECT, STRING, RouteDoc
from alphacut.api.plan_model import with_plan_model
from alphacut.api.request import SOURCE_FIELDS, parse_image_request
from alphacut.api.responses import json_response
from alphacut.api.vendors.common import Envelope, error_message, vendor_answer
from alphacut.errors import InvalidOption
from alphacut.options import COLOR, CutoutOptions, empty_unset, parse_bool
from alphacut.task_states import TaskState
from alphacut.urlfetch import IMAGE_URL

if TYPE_CHECKING:
    from alphacut.aws.tasks.table import TaskRecord

router = Router()
RETURN_TYPES = {"1": "url", "2": "base64", "3": "binary"}
OUTPUT_TYPES = {"1": "both", "2": "image", "3": "mask"}
OUTPUT_CODES = {v: int(k) for k, v in OUTPUT_TYPES.items()}
KNOWN = set(SOURCE_FIELDS) | {"sync", "type", "return_type", "output_type", "crop", "format", "bg_color"}


def _choice(params: dict[str, str], name: str, table: dict[str, str], default: str) -> str:
    value = str(params.get(name, default)).strip() or default
    if value not in table:
        raise InvalidOption(f"must be one of {', '.join(table)}, not {value!r}", field=name)
    return value


def _error(error: Exception, status: int, _request_id: str) -> dict[str, Any]:
    return {"status": status, "message": error_message(error)}


ENVELOPE = Envelope(_error)  # its routes' failures, and the service's refusals before them


def _data(record: TaskRecord, return_type: str) -> dict[str, Any]:
    service = services.task_service()
    store = services.result_store(None, router.current_event.raw_event)
    data = service.describe(record, RETURN_TYPES[return_type] if return_type != "3" else "url", store)
    data["output_type"] = OUTPUT_CODES[data["output_type"]]
    data["return_type"] = int(return_type)
    return data


@router.post("/api/tasks/visual/segmentation")
def create_segmentation() -> Response[Any]:
    def build(request_id: str) -> Response[Any]:
        service = services.task_service()
        event = router.current_event.raw_event
        request = parse_image_request(event, services.SETTINGS, service.max_bytes, fetch_urls=False)
        params = dict(request.params)
        unknown = sorted(set(params) - KNOWN)
        if unknown:
            raise InvalidOption(f"unknown parameter; accepted: {', '.join(sorted(KNOWN))}", field=unknown[0])
        sync = parse_bool(params.get("sync", "0"), "sync")
        return_type = _choice(params, "return_type", RETURN_TYPES, "1")
        output_type = _choice(params, "output_type", OUTPUT_TYPES, "2")
        if return_type == "3" and not sync:
            raise InvalidOption("3 (binary) works with sync=1 only", field="return_type")
        if return_type == "3" and output_type == "1":
            raise InvalidOption(
                "1 (image and mask) cannot be one binary answer: use return_type 1 or 2", field="output_type"
            )
        options = CutoutOptions.from_mapping(
            {
                "type": params.get("type") or "auto",
                "format": params.get("format") or "png",
                "bg_color": params.get("bg_color"),
                "output": OUTPUT_TYPES[output_type],
                "crop": params.get("crop", "0"),
            }
        )
        if options.type.value == "costume":
            raise InvalidOption("must be auto, person, object or stamp", field="type")
        owner = services.api_key_owner(event)
        task_id = service.submit(
            request.image or None,
            params.get("image_url") if request.source == "url" else None,
            with_plan_model(options),
            owner,
            None,
            credit_hold=current_gate(),
        )
        left = services.seconds_left(router.lambda_context)
        record = service.wait(task_id, owner, left) if sync else service.table.get(task_id)
        if record.state is TaskState.DONE:
            router.append_context(charge=CHARGED_BY_TASK)
            if return_type == "3":
                key = record.extra.get("mask_key" if output_type == "3" else "image_key")
                body = service.s3.get_object(Bucket=service.results_bucket, Key=key)["Body"].read()
                content_type = "image/png" if output_type == "3" else options.format.content_type
                return Response(200, content_type, body, {"X-Request-Id": request_id, "X-Task-Id": task_id})
        return json_response(
            200,
            {"status": 200, "message": "success", "data": _data(record, return_type)},
            {"X-Request-Id": request_id},
        )

    return vendor_answer(router, build, ENVELOPE, billable=False)


@router.get("/api/tasks/visual/segmentation/<task_id>")
def get_segmentation(task_id: str) -> Response[Any]:
    def build(request_id: str) -> Response[Any]:
        service = services.task_service()
        query = router.current_event.query_string_parameters or {}
        return_type = _choice(query, "return_type", {"1": "url", "2": "base64"}, "1")
        record = service.table.get(task_id, services.api_key_owner(router.current_event.raw_event))
        return json_response(
            200,
            {"status": 200, "message": "success", "data": _data(record, return_type)},
            {"X-Request-Id": request_id},
        )

    return vendor_answer(router, build, ENVELOPE, billable=False)


# ---- the contract's document (the OpenAPI document's operations for this module's routes) ----
PICWISH_FIELDS = {
    "image_url": empty_unset({**IMAGE_URL, "description": "http(s) URL, fetched when the task runs"}),
    "sync": FLAG,
    "type": {"type": "string", "enum": ["auto", "person", "object", "stamp"]},
    "return_type": {"type": "string", "enum": ["1", "2", "3"], "description": "1 url, 2 base64, 3 the image"},
    "output_type": {"type": "string", "enum": ["1", "2", "3"], "description": "1 both, 2 cutout, 3 mask"},
    "crop": FLAG,
    "format": {"type": "string", "enum": ["png", "jpg", "webp"]},
    "bg_color": COLOR,
}

PICWISH = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": INTEGER, "message": STRING, "data": OBJECT},
}

ROUTES = [
    RouteDoc(
        "/api/tasks/visual/segmentation",
        "post",
        "PicWish-style segmentation task",
        "multipart image_file or image_url; sync, type, return_type, output_type, crop, format, bg_color.",
        tag="vendor-compatible",
        body={
            "multipart/form-data": {
                "type": "object",
                "properties": {"image_file": BINARY, **PICWISH_FIELDS},
                "anyOf": [{"required": ["image_file"]}, {"required": ["image_url"]}],
            },
            JSON: {
                "type": "object",
                "properties": {"image_base64": BASE64_IMAGE, **PICWISH_FIELDS},
                "anyOf": [{"required": ["image_base64"]}, {"required": ["image_url"]}],
            },
        },
        answer={JSON: PICWISH, "image/png": BINARY, "image/jpeg": BINARY, "image/webp": BINARY},
        errors=PICWISH,
        answer_headers=("X-Request-Id", "X-Task-Id"),
    ),
    RouteDoc(
        "/api/tasks/visual/segmentation/{task_id}",
        "get",
        "PicWish-style task state",
        tag="vendor-compatible",
        answer={JSON: PICWISH},
        errors=PICWISH,
    ),
]
