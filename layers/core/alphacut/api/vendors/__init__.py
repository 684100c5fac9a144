"""Drop-in routes for the vendor APIs users switch from (JD Cloud matting, JD NeuHub selfie, PicWish-style
tasks, Alibaba AIDGE, AILabTools-style costume, remove.bg): one thin adapter per contract,
translating the vendor's request into the native options and the pipeline's result back into that
vendor's own envelope, field names and error codes. A customer switches by changing the URL.

Each module holds one Powertools ``Router``; ``alphacut.api.app`` includes them all.
"""

from typing import Any

from alphacut.api.openapi import BASE64_IMAGE, FLAG, IMAGE_TYPES, JSON, RouteDoc
from alphacut.api.vendors import aidge, ailab_costume, jd_cutout, jd_selfie, picwish_tasks, removebg
from alphacut.options import COLOR, OPTION_FIELDS, RemoveBg, empty_unset
from alphacut.urlfetch import IMAGE_URL

ROUTERS = [
    jd_cutout.router,
    jd_selfie.router,
    picwish_tasks.router,
    aidge.router,
    ailab_costume.router,
    removebg.router,
]

BINARY = {"type": "string", "format": "binary"}
TEXT = {"type": "string"}
WHOLE = {"type": "integer"}

OBJECT = {"type": "object"}
RAW_IMAGE = {media: {"schema": BINARY} for media in IMAGE_TYPES}
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
    "properties": {"status": WHOLE, "message": TEXT, "data": OBJECT},
}
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
        "resCode": WHOLE,
        "resMessage": TEXT,
        "success": {"type": "boolean"},
        "requestId": TEXT,
        "data": {"type": ["object", "null"]},
    },
}
JD_CUTOUT = {
    "type": "object",
    "required": ["code", "result"],
    "properties": {"code": TEXT, "msg": TEXT, "result": OBJECT},
}
JD_SELFIE = {
    "type": "object",
    "required": ["code", "result"],
    "properties": {"code": TEXT, "charge": {"type": "boolean"}, "remain": {}, "msg": TEXT, "result": OBJECT},
}
AILAB = {
    "type": "object",
    "required": ["request_id", "error_code"],
    "properties": {
        "request_id": TEXT,
        "log_id": TEXT,
        "error_code": WHOLE,
        "error_msg": TEXT,
        "data": OBJECT,
    },
}
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
                "result_b64": TEXT,
                **{f"foreground_{side}": WHOLE for side in ("top", "left", "width", "height")},
                "check": {"$ref": "#/components/schemas/PresetCheck"},
            },
        }
    },
}

VENDOR_ROUTES = [
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

# remove.bg's API: its own REST API (its own host on AWS, its own gateway responses and document)
REMOVEBG_ROUTES = [
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
    ),
    RouteDoc(
        "/v1.0/openapi.json",
        "get",
        "This OpenAPI document (remove.bg's API)",
        tag="vendor-compatible",
        api="removebg",
        answer={JSON: {"type": "object", "required": ["openapi", "paths"]}},
    ),
]
