"""remove.bg's API: ``POST /v1.0/removebg`` and ``GET /v1.0/account``, so that the plugins, apps and
scripts written for remove.bg work against alphacut by changing the base URL.

Requests: JSON, form-urlencoded or multipart, with exactly one of ``image_file`` (multipart),
``image_file_b64`` or ``image_url``, and remove.bg's parameters, each translated into the native
options (``TRANSLATED``; ``add_shadow``/``shadow_type``/``shadow_opacity`` draw a shadow:
``SHADOW_TYPES``); ``semitransparency``, which alphacut cannot honour, does what remove.bg documents
for subjects it cannot do it for (the result comes without). alphacut's canvas, preset and shadow
shape options are taken too (``EXTENSIONS``); other parameters remove.bg does not have are ignored,
as remove.bg ignores them, and named in ``X-Alphacut-Ignored``. A preset's check is in
``X-Alphacut-Check``.

Answers: the image itself (``X-Type``, ``X-Width``, ``X-Height``, ``X-Foreground-*``), or with
``Accept: application/json`` ``{"data": {"result_b64", "foreground_top", ...}}``; the metering adds
``X-Credits-Charged`` (a credit-based key: the credits paid) and ``X-RateLimit-*`` from the key's
plan. Errors are ``{"errors": [{"title", "code", "detail"}]}`` with remove.bg's statuses
(``ERROR_TABLE``: 402 ``insufficient_credits`` when a credit-based key's balance does not cover the
call); the gateway in front answers 403 for a bad key, 429 over the rate and 402 once the daily
quota is spent (the template's remove.bg API).

Usage::

    curl -H "X-Api-Key: $KEY" -F image_file=@photo.jpg -F size=preview \\
         https://<remove.bg API>/v1.0/removebg -o cutout.png
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from alphacut.api import services
from alphacut.api.metering import spendable
from alphacut.api.openapi import BASE64_IMAGE, BINARY, INTEGER, JSON, OBJECT, STRING, RouteDoc
from alphacut.api.request import decode_base64_image, header, read_body
from alphacut.api.responses import json_response
from alphacut.api.vendors.common import Envelope, error_message, vendor_answer
from alphacut.aws.ledger.limits import next_utc_midnight
from alphacut.errors import (
    AlphacutError,
    Conflict,
    CorruptImage,
    ImageTooLarge,
    ImageTooSmall,
    InsufficientCredits,
    InvalidOption,
    NoSubjectFound,
    QuotaExceeded,
    RateLimited,
    ResolutionTooHigh,
    ResponseTooLarge,
    UnsupportedImageFormat,
    UnsupportedMediaType,
    UrlFetchFailed,
    UrlNotAllowed,
    http_status,
)
from alphacut.options import (
    OPTION_FIELDS,
    CutoutOptions,
    RemoveBg,
    SubjectType,
    empty_unset,
    option_rows,
    parse_bool,
    parse_margin,
)
from alphacut.scopes import IMAGES, USAGE
from alphacut.urlfetch import IMAGE_URL

if TYPE_CHECKING:
    from alphacut.api.metering import Usage
    from alphacut.pipeline import CutoutResult

router = Router()

SOURCES = ("image_file", "image_file_b64", "image_url")
# remove.bg's types -> the model that runs: people get the person pipeline, everything else the
# general one (ISNet cuts out the main object, whatever it is)
TYPES = {
    "auto": SubjectType.AUTO,
    "person": SubjectType.PERSON,
    "product": SubjectType.OBJECT,
    "car": SubjectType.OBJECT,
    "animal": SubjectType.OBJECT,
    "graphic": SubjectType.OBJECT,
    "graphics": SubjectType.OBJECT,
    "transportation": SubjectType.OBJECT,
}
# what X-Type says per type_level: level 1 knows person, product, animal, car, other; level 2 more
LEVEL_1_TYPES = {"person": "person", "product": "product", "animal": "animal", "car": "car"}
LEVEL_2_TYPES = {
    **LEVEL_1_TYPES,
    "graphic": "graphics",
    "graphics": "graphics",
    "transportation": "transportation",
}
TYPE_LEVELS = ("none", "1", "2", "latest")
# remove.bg's own parameters read as the native options of the same name, and alphacut's own
# options this route takes too (remove.bg has none of them: a store plugin can ask for a marketplace
# canvas or shape the shadow without leaving the remove.bg contract): the option table says which
TRANSLATED = tuple(row.name for row in option_rows() if row.removebg is RemoveBg.TRANSLATED)
EXTENSIONS = tuple(row.name for row in option_rows() if row.removebg is RemoveBg.EXTENSION)
ACCEPTED_AS_IS = ("semitransparency",)  # a boolean, checked, no effect here
# remove.bg's shadow types -> alphacut's: its 3D shadow lies on the floor (cast), its car shadow is
# the dark band under the wheels (contact); add_shadow=true alone: car for cars, else drop
SHADOW_TYPES = {"drop": "drop", "3d": "cast", "car": "contact", "none": "none"}
KNOWN = {
    *SOURCES,
    *TRANSLATED,
    *EXTENSIONS,
    *ACCEPTED_AS_IS,
    "add_shadow",
    "shadow_type",
    "type",
    "type_level",
    "bg_image_file",
}
MAX_MARGIN_PERCENT, MAX_MARGIN_PIXELS = 50, 500  # remove.bg's crop_margin limits
DEFAULT_SIZE = "preview"  # remove.bg's default
DEFAULT_FORMAT = "auto"
ACCOUNT_CONTENT_TYPE = "application/json; charset=utf-8"  # remove.bg's, to the letter: clients compare it


class RemoveBgRefusal(InvalidOption):
    """A remove.bg-specific 400 (missing or several sources), with remove.bg's code."""

    def __init__(self, message: str, *, code: str, field: str):
        super().__init__(message, field=field)
        self.code = code


# (error class, status, remove.bg code, title); the first class the error is an instance of wins
ERROR_TABLE: list[tuple[type[BaseException], int, str, str]] = [
    (NoSubjectFound, 400, "unknown_foreground", "Could not identify foreground in image"),
    (ResolutionTooHigh, 400, "resolution_too_high", "Input image resolution too high"),
    (ImageTooLarge, 400, "file_too_large", "File too large"),
    (ImageTooSmall, 400, "resolution_too_low", "Input image resolution too low"),
    (UnsupportedImageFormat, 400, "invalid_file_type", "Invalid file type"),
    (CorruptImage, 400, "invalid_image", "Image could not be read"),
    (UrlNotAllowed, 400, "invalid_image_url", "Invalid image URL"),
    (UrlFetchFailed, 400, "failed_to_download", "Failed to download image from URL"),
    (UnsupportedMediaType, 400, "invalid_content_type", "Unsupported Content-Type"),
    (ResponseTooLarge, 400, "result_too_large", "Result too large for a synchronous answer"),
    (Conflict, 409, "conflict", "Request conflicts with an earlier one"),
    (InsufficientCredits, 402, "insufficient_credits", "Insufficient credits"),
    (QuotaExceeded, 402, "insufficient_credits", "Insufficient credits"),  # remove.bg: the day's calls spent
    (RateLimited, 429, "rate_limit_exceeded", "Rate limit exceeded"),
    (InvalidOption, 400, "invalid_parameters", "Invalid parameters"),
]


def error_entry(error: Exception) -> tuple[int, dict[str, str]]:
    """The status and remove.bg's ``{"title", "code", "detail"}`` for any failure."""
    if isinstance(error, RemoveBgRefusal):
        return 400, {"title": "Invalid source", "code": error.code, "detail": error_message(error)}
    for cls, status, code, title in ERROR_TABLE:
        if isinstance(error, cls):
            return status, {"title": title, "code": code, "detail": error_message(error)}
    status = http_status(error)
    code = error.code if isinstance(error, AlphacutError) else "internal_error"
    return status, {
        "title": "Internal server error" if status >= 500 else "Request failed",
        "code": code,
        "detail": error_message(error),
    }


def errors_body(error: Exception) -> dict[str, Any]:
    return {"errors": [error_entry(error)[1]]}


# ---- request ----------------------------------------------------------------------------------------
def read_fields(event: dict[str, Any]) -> tuple[dict[str, str], dict[str, bytes]]:
    """String parameters and uploaded files from a JSON, form or multipart body (query too)."""
    params = dict(event.get("queryStringParameters") or {})
    body = read_body(event)
    files = body.files
    params.update(body.fields)
    if not body.understood and (body.media_type or event.get("body")):
        raise UnsupportedMediaType(
            f"Content-Type {body.content_type or '(none)'} is not accepted: send "
            "multipart/form-data, application/x-www-form-urlencoded or application/json",
            field="Content-Type",
        )
    for name in [n for n in files if n not in ("image_file", "bg_image_file")]:
        params.setdefault(name, files.pop(name).decode("utf-8", "replace"))
    return params, files


def read_source(params: dict[str, str], files: dict[str, bytes], max_bytes: int) -> bytes:
    """The one image source: a file, base64 or a URL (fetched under the same rules as image_url)."""
    given = [name for name in SOURCES if files.get(name) or (params.get(name) or "").strip()]
    if not given:
        raise RemoveBgRefusal(
            "no image given: send image_file, image_file_b64 or image_url",
            code="missing_source",
            field="image_file",
        )
    if len(given) > 1:
        raise RemoveBgRefusal(
            f"give exactly one image source, not {', '.join(given)}", code="multiple_sources", field=given[1]
        )
    source = given[0]
    if source == "image_file":
        return files["image_file"]
    if source == "image_file_b64":
        return decode_base64_image(params["image_file_b64"], max_bytes, "image_file_b64")
    return services.SETTINGS.fetch(params["image_url"], max_bytes)


def translate(
    params: dict[str, str], files: dict[str, bytes], max_bytes: int, fetch: bool = True
) -> CutoutOptions:
    """remove.bg's parameters as the native options (the background image fetched or read here;
    ``fetch=False``: not fetched, for the price of what was asked before any download)."""
    kind = (params.get("type") or "auto").strip().lower()
    if kind not in TYPES:
        raise InvalidOption(
            f"must be one of {', '.join(sorted(set(TYPES) - {'graphics'}))}, not {kind!r}", field="type"
        )
    for name in ACCEPTED_AS_IS:
        if name in params:
            parse_bool(params[name], name)
    mapping: dict[str, Any] = {name: params[name] for name in (*TRANSLATED, *EXTENSIONS) if name in params}
    mapping["shadow"] = shadow_type(params, kind)
    mapping.setdefault("shadow_frame", "keep")  # remove.bg's shadowed result is the photo's own size
    mapping.setdefault("size", DEFAULT_SIZE)
    mapping.setdefault("format", DEFAULT_FORMAT)
    if "crop_margin" in mapping:
        mapping["crop_margin"] = parse_margin(
            mapping["crop_margin"], "crop_margin", MAX_MARGIN_PERCENT, MAX_MARGIN_PIXELS
        )
    background = files.get("bg_image_file") or None
    background_url = mapping.get("bg_image_url", "").strip()
    if background_url and background is not None:
        raise RemoveBgRefusal(
            "give one background, not both bg_image_url and bg_image_file",
            code="multiple_bg_sources",
            field="bg_image_url",
        )
    if background_url and fetch:
        background = services.SETTINGS.fetch(background_url, max_bytes, field="bg_image_url")
    return CutoutOptions.from_mapping({**mapping, "type": TYPES[kind]}, bg_image=background)


def shadow_type(params: dict[str, str], kind: str) -> str:
    """The native shadow for remove.bg's ``shadow_type`` (which asks for one by itself) or
    ``add_shadow=true`` (the older switch: a car shadow for cars, a drop shadow for the rest)."""
    wanted = parse_bool(params["add_shadow"], "add_shadow") if "add_shadow" in params else False
    named = (params.get("shadow_type") or "").strip().lower()
    if named:
        if named not in SHADOW_TYPES:
            raise InvalidOption(f"must be one of drop, 3D, car, none, not {named!r}", field="shadow_type")
        return SHADOW_TYPES[named]
    if not wanted:
        return "none"
    return "contact" if kind == "car" else "drop"


def type_header(params: dict[str, str]) -> str | None:
    """X-Type: the type asked for, named at the asked level (auto: other; no classifier runs)."""
    level = (params.get("type_level") or "1").strip().lower()
    if level not in TYPE_LEVELS:
        raise InvalidOption(f"must be one of {', '.join(TYPE_LEVELS)}, not {level!r}", field="type_level")
    if level == "none":
        return None
    names = LEVEL_1_TYPES if level == "1" else LEVEL_2_TYPES
    return names.get((params.get("type") or "auto").strip().lower(), "other")


# ---- answer -----------------------------------------------------------------------------------------
def foreground(result: CutoutResult) -> dict[str, int]:
    left, top, right, bottom = result.subject_box or (0, 0, 0, 0)
    return {
        "foreground_top": top,
        "foreground_left": left,
        "foreground_width": right - left,
        "foreground_height": bottom - top,
    }


def answer(
    result: CutoutResult, kind: str | None, accept: str, request_id: str, ignored: list[str]
) -> Response[Any]:
    """The image (or remove.bg's JSON), with ``kind`` as X-Type (None: no X-Type)."""
    data, content_type = result.single_image
    box = foreground(result)
    headers = {
        "X-Request-Id": request_id,
        "X-Width": str(result.width),
        "X-Height": str(result.height),
        # the largest result this photo gives (size=full: its own size), as remove.bg says it
        "X-Max-Width": str(result.source_size[0]),
        "X-Max-Height": str(result.source_size[1]),
        **{"X-Foreground-" + name.split("_")[1].title(): str(value) for name, value in box.items()},
    }
    if kind is not None:
        headers["X-Type"] = kind
    if result.model is not None:  # the model that made the matte (an extension, as model= is)
        headers["X-Alphacut-Model"] = result.model
    if result.check is not None:
        headers["X-Alphacut-Check"] = result.check.header()
    if result.enlargement is not None:
        headers["X-Alphacut-Enlargement"] = str(result.enlargement)
    if ignored:
        headers["X-Alphacut-Ignored"] = ",".join(ignored)
    if "application/json" in accept.lower():
        body: dict[str, Any] = {"data": {"result_b64": base64.b64encode(data).decode("ascii"), **box}}
        if result.check is not None:
            body["data"]["check"] = result.check.to_dict()
        return json_response(200, body, headers)
    return Response(status_code=200, content_type=content_type, body=data, headers=headers)


def usage_headers(usage: Usage) -> dict[str, str]:
    """What the metering adds to every answer of this API: the credits charged (a quota-based key:
    1 a charged call) and, for a quota-based key, its daily calls."""
    charged = usage.credits if usage.credits is not None else int(usage.charged)
    headers = {"X-Credits-Charged": str(charged)}
    if usage.quota is not None:
        headers.update(
            {
                "X-RateLimit-Limit": str(usage.quota),
                "X-RateLimit-Remaining": str(usage.remain or 0),
                "X-RateLimit-Reset": str(next_utc_midnight()),
            }
        )
    return headers


@router.post("/v1.0/removebg")
def removebg_route() -> Response[Any]:
    router.append_context(usage_headers=usage_headers)

    def build(request_id: str) -> Response[Any]:
        event = router.current_event.raw_event
        pipeline = services.pipeline()
        params, files = read_fields(event)
        pipeline.reserve(translate(params, files, pipeline.limits.max_bytes, fetch=False))  # before downloads
        options = translate(params, files, pipeline.limits.max_bytes)
        image = read_source(params, files, pipeline.limits.max_bytes)
        kind = type_header(params)  # a bad type_level is refused before the model runs
        result = pipeline.run(image, options)
        if not result.found:
            raise NoSubjectFound("no foreground was found in this image", field="image_file")
        ignored = sorted(set(params) - KNOWN)
        return answer(result, kind, header(event, "accept"), request_id, ignored)

    return vendor_answer(router, build, ENVELOPE)


def error_status(error: Exception) -> int:
    return error_entry(error)[0]


ENVELOPE = Envelope(lambda error, status, rid: errors_body(error), status_for=error_status)


@router.get("/v1.0/account")
def account_route() -> Response[Any]:
    """The key's account as remove.bg's, whose ``credits.total`` is ``subscription + payg +
    enterprise``: a credit-based key's balance is its pay-as-you-go credits, a quota key's results
    left today its subscription credits (each delivered result is ``X-Credits-Charged: 1`` of them).
    ``api.free_calls`` is remove.bg's free preview allowance, which alphacut has none of: 0, never
    the same figure again (clients such as removebg-cli add the two). Numbers from a key's first
    call (its plan comes with the key); reading the account spends nothing."""
    router.append_context(usage_headers=usage_headers)

    def build(request_id: str) -> Response[Any]:
        event = router.current_event.raw_event
        meter = services.usage_meter()
        known = services.caller(event)
        plan = known.plan if known is not None else None
        quota = plan.quota if plan is not None else None
        credit_based = plan is not None and plan.credit_based
        payg, subscription = spendable(meter, known) if meter is not None and known is not None else (0, 0)
        attributes = {
            "credits": {
                "total": payg + subscription,
                "subscription": subscription,
                "payg": payg,
                "enterprise": 0,
            },
            "api": {"free_calls": 0, "sizes": "all"},
            "plan": {
                "name": plan.name if plan else None,
                "daily_quota": quota,
                "credit_based": credit_based,
                "rate_limit": plan.rate_limit if plan else None,
                "resets_at": next_utc_midnight(),
            },
        }
        headers = {"X-Request-Id": request_id, "Content-Type": ACCOUNT_CONTENT_TYPE}
        return json_response(200, {"data": {"attributes": attributes}}, headers)

    return vendor_answer(router, build, ENVELOPE, billable=False)


# ---- the contract's document (the OpenAPI document's operations for this module's routes) ----
REMOVEBG_FIELDS = {
    "image_url": empty_unset(IMAGE_URL),
    "image_file_b64": BASE64_IMAGE,
    "size": {"type": "string", "enum": ["auto", "preview", "small", "regular", "medium", "hd", "full", "4k"]},
    "type": {
        "type": "string",
        "enum": ["auto", "person", "product", "car", "animal", "graphic", "transportation"],
    },
    "type_level": {"type": "string", "enum": ["none", "1", "2", "latest"]},
    "format": {"type": "string", "enum": ["auto", "png", "jpg", "zip"]},
    "roi": {"type": "string", "description": "x1 y1 x2 y2 in px or %, such as 0 0 100% 100%"},
    "crop": {"type": "boolean"},
    "crop_margin": {"type": "string", "description": "px or %, one to four values; at most 50% or 500px"},
    "scale": {"type": "string", "description": "10% to 100%, or original"},
    "position": {"type": "string", "description": "original, center, or x% y%"},
    "channels": {"type": "string", "enum": ["rgba", "alpha"]},
    "add_shadow": {
        "type": "boolean",
        "description": "a shadow: car shadow (contact) for type=car, else drop",
    },
    "shadow_type": {
        "type": "string",
        "enum": ["drop", "3D", "car", "none"],
        "description": "drop: drop; 3D: cast on the floor; car: contact under the lowest edge",
    },
    "shadow_opacity": {"type": "number", "minimum": 0, "maximum": 100, "default": 50},
    **{  # alphacut's options remove.bg's route takes too
        row.name: {**schema, "description": "alphacut extension: " + schema.get("description", row.name)}
        for row in OPTION_FIELDS
        if row.removebg is RemoveBg.EXTENSION
        for schema in [row.removebg_schema or row.schema]
    },
    "semitransparency": {"type": "boolean"},
    "bg_color": {
        "type": "string",
        "description": "hex (81d4fa, fff, 81d4fa77) or a colour name; empty: none",
    },
    "bg_image_url": empty_unset(IMAGE_URL),
}

REMOVEBG_SOURCES = [
    {"required": ["image_file"]},
    {"required": ["image_file_b64"]},
    {"required": ["image_url"]},
]

REMOVEBG_FORM = {"type": "object", "properties": REMOVEBG_FIELDS, "anyOf": REMOVEBG_SOURCES[1:]}

REMOVEBG_HEADERS = (
    "X-Request-Id",
    "X-Credits-Charged",
    "X-Width",
    "X-Height",
    "X-Max-Width",
    "X-Max-Height",
    "X-Type",
    "X-Foreground-Top",
    "X-Foreground-Left",
    "X-Foreground-Width",
    "X-Foreground-Height",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-Alphacut-Ignored",
    "X-Alphacut-Check",
    "X-Alphacut-Enlargement",
)

REMOVEBG_JSON = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "object",
            "required": ["result_b64"],
            "properties": {
                "result_b64": STRING,
                **{f"foreground_{side}": INTEGER for side in ("top", "left", "width", "height")},
                "check": {"$ref": "#/components/schemas/PresetCheck"},
            },
        }
    },
}

# remove.bg's API: its own REST API (its own host on AWS, its own gateway responses and document)
ROUTES = [
    RouteDoc(
        "/v1.0/removebg",
        "post",
        "remove.bg background removal (remove.bg's own REST API in the stack)",
        "image_file, image_file_b64 or image_url and every remove.bg parameter; answers the image or "
        "{data: {result_b64, foreground_*}}; errors {errors: [{title, code, detail}]}.",
        tag="vendor-compatible",
        api="removebg",
        body={
            "multipart/form-data": {
                "type": "object",
                "properties": {"image_file": BINARY, "bg_image_file": BINARY, **REMOVEBG_FIELDS},
                "anyOf": REMOVEBG_SOURCES,
            },
            "application/x-www-form-urlencoded": REMOVEBG_FORM,
            JSON: REMOVEBG_FORM,
        },
        answer={"image/png": BINARY, "image/jpeg": BINARY, "application/zip": BINARY, JSON: REMOVEBG_JSON},
        answer_headers=REMOVEBG_HEADERS,
    ),
    RouteDoc(
        "/v1.0/account",
        "get",
        "remove.bg account: the calls left today",
        tag="vendor-compatible",
        api="removebg",
        answer={JSON: {"type": "object", "required": ["data"], "properties": {"data": OBJECT}}},
        answer_headers=("X-Request-Id", "X-Credits-Charged", "X-RateLimit-Limit", "X-RateLimit-Remaining"),
        scopes=(IMAGES, USAGE),  # remove.bg's plugins read it before they send work
    ),
    RouteDoc(
        "/v1.0/openapi.json",
        "get",
        "This OpenAPI document (remove.bg's API)",
        tag="vendor-compatible",
        api="removebg",
        answer={JSON: {"type": "object", "required": ["openapi", "paths"]}},
        scopes=(),
    ),
]
