"""The OpenAPI 3.1 document, generated from the route table and the options model.

Usage::

    spec = build_openapi(ROUTES, server_url="https://abc.execute-api.eu-west-1.amazonaws.com/prod")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alphacut import __version__
from alphacut.api.cors import ANSWER_HEADERS
from alphacut.options import BOOLEAN_WORDS, DEFAULT_MODEL, SubjectType, empty_unset, option_rows
from alphacut.scopes import IMAGES
from alphacut.urlfetch import IMAGE_URL
from alphacut.verdict import REASONS

# what the function answers (the one error table's statuses) and what API Gateway answers itself
ERROR_STATUSES = {
    400: "a field is wrong (named in error.field)",
    404: "no such thing (a task, a link, a page)",
    409: "an Idempotency-Key reused with another request, or that request still running",
    413: "image over the byte or pixel limit, or a body over API Gateway's 10 MB / Lambda's 6 MB",
    415: "not an image, or a body type not read",
    422: "image damaged, too small, or image_url not downloadable",
    500: "server error (quote request_id)",
    502: "API Gateway: the function failed",
    504: "the answer was not ready within API Gateway's 29 s",
}
GATEWAY_ONLY = (502,)  # answered by API Gateway alone: {"message"}
GATEWAY_TOO = (413, 504)  # answered by the function or by API Gateway
KEY_STATUSES = {
    "native": {
        401: "no or unknown API key (x-api-key)",
        402: "insufficient_credits: a credit-based key's balance does not cover the call (nothing ran)",
        429: (
            "over the usage plan's rate or daily quota; too_many_in_flight: over 1,000 of a credit-based"
            " key's calls being reserved at once (Retry-After)"
        ),
    },
    "removebg": {
        403: "remove.bg: no or unknown API key (X-Api-Key), or a key whose scopes do not open the route",
        402: "remove.bg: insufficient credits (a credit-based key's balance, or the daily quota, is spent)",
        429: "remove.bg: over the key's request rate",
    },
}
ERROR_SCHEMA = {"native": "Error", "removebg": "RemoveBgErrors"}
JSON = "application/json"
# what the base64 reader takes: standard base64, padding optional, or a data: URL
# (decode_base64_image also reads URL-safe base64 and line breaks)
BASE64_PATTERN = (
    r"^(data:image/[a-z+.-]+;base64,)?([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}(==)?|[A-Za-z0-9+/]{3}=?)?$"
)
BASE64_IMAGE: dict[str, Any] = {"type": "string", "pattern": BASE64_PATTERN}
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "application/octet-stream")


@dataclass(frozen=True)
class RouteDoc:
    """One operation of the document. Image routes (``types``) get the options model's parameters
    and bodies; the others say theirs: ``query`` parameters, a ``body`` per content type, the
    ``answer`` per content type (200 unless ``answer_status``), the ``errors`` schema their own
    failures answer in (a vendor's envelope), and which REST API serves them (``api``)."""

    path: str
    method: str
    summary: str
    description: str = ""
    types: tuple[SubjectType, ...] = ()  # image routes: the types they accept
    extra_responses: dict[int, str] = field(default_factory=dict)
    tag: str = "native"  # native | vendor-compatible
    key_required: bool = True
    query: dict[str, dict[str, Any]] = field(default_factory=dict)
    body: dict[str, dict[str, Any]] = field(default_factory=dict)
    answer: dict[str, dict[str, Any]] = field(default_factory=dict)
    answer_status: int = 200
    errors: dict[str, Any] | None = None  # None: the API's own error schema
    api: str = "native"  # native | removebg: the REST API (its gateway responses apply)
    answer_headers: tuple[str, ...] = ("X-Request-Id",)
    without_options: tuple[str, ...] = ()  # image options this route does not take
    # the function serving it reads the models registry (its models layer): the document lists
    # the models ``model`` takes; a task's model is checked where the task runs (its Segment step)
    registry_models: bool = True
    required_query: tuple[str, ...] = ()  # query parameters a request must give
    body_required: bool = True  # False: no body is the same as an empty object
    # a keyed route: the key scopes that open it, any one of them (alphacut.scopes); (): any key
    scopes: tuple[str, ...] = (IMAGES,)

    @property
    def takes_image(self) -> bool:
        return bool(self.types)


def option_schemas(types: tuple[SubjectType, ...], models: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    if types == (SubjectType.COSTUME,):
        from alphacut.costume import Garment

        # a costume is read from ISNet's decoder maps: that model only
        return _common_options(types, models and (DEFAULT_MODEL,)) | {
            "classes": {
                "type": "string",
                "pattern": "^(all|{0}(,{0})*)?$".format("(" + "|".join(g.value for g in Garment) + ")"),
                "default": "all",
                "description": "comma list of " + ", ".join(g.value for g in Garment) + ", or all",
            },
            "return_form": {
                "type": "string",
                "enum": ["mask", "whiteBK"],
                "description": "AILabTools apparel cutout: mask, or a cutout on white; unset: 4-channel PNG",
            },
            "return": {"type": "string", "enum": ["base64", "url"], "default": "base64"},
        }
    return _common_options(types, models)


def _common_options(
    types: tuple[SubjectType, ...], models: tuple[str, ...] = ()
) -> dict[str, dict[str, Any]]:
    """The option table's rows (``alphacut.options``), the route's types in ``type`` and, where the
    document is made beside the models layer, the registry's models in ``model``."""
    schemas = {row.name: row.schema for row in option_rows()}
    schemas["type"] = {**schemas["type"], "enum": [t.value for t in types], "default": types[0].value}
    if models:
        schemas["model"] = {**schemas["model"], "enum": list(models)}
    return schemas | {
        "return": {
            "type": "string",
            "enum": ["binary", "base64", "url"],
            "description": "default: binary if Accept asks for image/*, else base64",
        },
    }


BINARY = {"type": "string", "format": "binary"}


def image_bodies(options: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The image routes' bodies: the raw image (options in the query), multipart, JSON; where the
    route takes ``result_id`` (a touch-up, ``alphacut.touchup``), it stands for the image and the
    strokes come in ``refine`` / ``refine_base64``."""
    touch_up = "result_id" in options
    strokes = "a PNG of the photo's size (or scaled to it): opaque white keeps, opaque black erases"
    multipart = {
        "type": "object",
        "properties": {
            "image_file": {"type": "string", "format": "binary", "minLength": 1},
            "image": {"type": "string", "format": "binary", "minLength": 1},
            "image_url": empty_unset(IMAGE_URL),
            "bg_image_file": {"type": "string", "format": "binary"},
            **({"refine": {**BINARY, "description": strokes}} if touch_up else {}),
            **options,
        },
        "anyOf": [{"required": ["image_file"]}, {"required": ["image"]}, {"required": ["image_url"]}]
        + ([{"required": ["result_id"]}] if touch_up else []),
    }
    as_json = {
        "type": "object",
        "properties": {
            "image_base64": {**BASE64_IMAGE, "description": "base64 or a data: URL"},
            "bg_image_base64": {**BASE64_IMAGE, "description": "a background picture, base64"},
            **({"refine_base64": {**BASE64_IMAGE, "description": strokes + ", base64"}} if touch_up else {}),
            "image_url": empty_unset({**IMAGE_URL, "description": "http(s), public addresses only"}),
            **options,
        },
        "anyOf": [{"required": ["image_base64"]}, {"required": ["image_url"]}]
        + ([{"required": ["result_id"]}] if touch_up else []),
    }
    raw = {"schema": {"type": "string", "format": "binary"}}
    return {
        **{media: raw for media in IMAGE_TYPES},
        "multipart/form-data": {"schema": multipart},
        JSON: {"schema": as_json},
    }


def image_answers() -> dict[str, Any]:
    image = {"schema": {"type": "string", "format": "binary"}}
    return {
        JSON: {"schema": {"$ref": "#/components/schemas/CutoutAnswer"}},
        **{media: image for media in ("image/png", "image/jpeg", "image/webp", "application/zip")},
    }


def _query(options: dict[str, dict[str, Any]], required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "required": name in required, "schema": schema}
        for name, schema in options.items()
    ]


def _path_parameters(path: str) -> list[dict[str, Any]]:
    names = [
        segment[1:-1] for segment in path.split("/") if segment.startswith("{") and segment.endswith("}")
    ]
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in names
    ]


def _responses(route: RouteDoc, answer: dict[str, Any]) -> dict[str, Any]:
    """Every status the route can answer: its result, its own errors, API Gateway's."""
    own = route.errors or {"$ref": f"#/components/schemas/{ERROR_SCHEMA[route.api]}"}
    if route.errors is not None and route.api == "native":
        own = {"anyOf": [route.errors, {"$ref": "#/components/schemas/Error"}]}  # middleware refusals
    gateway = {"$ref": "#/components/schemas/GatewayMessage"}
    responses: dict[str, Any] = {
        str(route.answer_status): {
            "description": route.summary,
            "headers": _headers(route.answer_headers),
            **({"content": answer} if answer else {}),
        }
    }
    statuses = dict(ERROR_STATUSES) | route.extra_responses
    if route.key_required:
        statuses |= KEY_STATUSES[route.api]
    if route.key_required and route.scopes and 403 not in statuses:  # the function's own answer
        statuses[403] = "insufficient_scope: the key's scopes do not open the route (x-alphacut-scopes)"
    for status, text in sorted(statuses.items()):
        if status == route.answer_status:
            continue
        if status in GATEWAY_ONLY:
            schema: dict[str, Any] = gateway
        elif status in GATEWAY_TOO:
            schema = {"anyOf": [own, gateway]}
        elif status in KEY_STATUSES[route.api]:
            schema = {"$ref": f"#/components/schemas/{ERROR_SCHEMA[route.api]}"}  # the gateway response
        else:
            schema = own
        answer_headers = ("Retry-After",) if status in (429, 503) else ()
        responses[str(status)] = {
            "description": text,
            "headers": _headers(answer_headers),
            "content": {JSON: {"schema": schema}},
        }
    return responses


HEADER_TEXTS = ANSWER_HEADERS | {"Location": "where the result is (a presigned link)"}


def _headers(names: tuple[str, ...]) -> dict[str, Any]:
    return {
        name: {"description": HEADER_TEXTS[name], "required": False, "schema": {"type": "string"}}
        for name in names
    }


def _operation(route: RouteDoc, models: tuple[str, ...] = ()) -> dict[str, Any]:
    operation_id = "".join(c if c.isalnum() else "_" for c in f"{route.method}_{route.path.strip('/')}")
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": operation_id.strip("_"),
        "tags": [route.tag],
        "security": [{"api_key": []}] if route.key_required else [],
    }
    if route.key_required:  # the key scopes that open it, any one (alphacut.scopes); []: any key
        operation["x-alphacut-scopes"] = list(route.scopes)
    if route.description:
        operation["description"] = route.description
    query, body, answer = route.query, dict(route.body), dict(route.answer)
    if route.takes_image:
        query = {
            name: schema
            for name, schema in (
                option_schemas(route.types, models if route.registry_models else ()) | route.query
            ).items()
            if name not in route.without_options
        }
        body = body or image_bodies(query)
        answer = answer or image_answers()
    parameters = _path_parameters(route.path) + _query(query, route.required_query)
    if parameters:
        operation["parameters"] = parameters
    if body:
        content = {k: _schema(v) for k, v in body.items()}
        if JSON in content:
            content[JSON] = {"schema": as_json_reads(content[JSON]["schema"])}
        content = {k: {"schema": one_source_required(v["schema"])} for k, v in content.items()}
        operation["requestBody"] = {"required": route.body_required, "content": content}
    operation["responses"] = _responses(route, {k: _schema(v) for k, v in answer.items()})
    return operation


# a yes/no as the parsers read it: JSON's true/false, the words forms send, 0 and 1
FLAG: dict[str, Any] = {
    "anyOf": [
        {"type": "boolean"},
        {"type": "string", "enum": BOOLEAN_WORDS},
        {"type": "integer", "enum": [0, 1]},
    ]
}


def as_json_reads(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON body as the parsers read it: optional members may be null (not given), a yes/no
    member takes the words and numbers forms send as well as true/false, and a free-text member a
    number (read as its text)."""
    required = set(schema.get("required", []))

    def member(name: str, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") == "boolean":
            value = {k: v for k, v in value.items() if k != "type"} | FLAG
        elif value.get("type") == "string" and not {"enum", "format", "pattern"} & set(value):
            value = {**value, "type": ["string", "number"]}  # a number is read as its text
        return value if name in required else {"anyOf": [value, {"type": "null"}]}

    properties = {name: member(name, value) for name, value in schema.get("properties", {}).items()}
    return {**schema, "properties": properties}


def one_source_required(schema: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [{"required": [source]}, ...]`` (one of the image sources is required) made exact:
    each branch also says its source is given, not null and not empty, as the parsers read it (an
    empty ``image_url`` or a null ``image_base64`` is no image). A request without one is a 400
    naming the field, as the document's 400 says."""
    variants = schema.get("anyOf")
    if not variants or "properties" not in schema or any(set(v) != {"required"} for v in variants):
        return schema
    properties = schema["properties"]
    branches = [
        {"required": [name], "properties": {name: _given(properties[name])}}
        for variant in variants
        for name in variant["required"]
    ]
    sources = ", ".join(name for branch in branches for name in branch["required"])
    return {**schema, "anyOf": branches, "description": f"one of {sources} is required"}


def _given(schema: dict[str, Any]) -> dict[str, Any]:
    """A source member as it must be when it is the image: not null, not empty."""
    if "anyOf" in schema:  # as_json_reads' ``value or null``: the value
        schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
    if schema.get("type") == ["string", "number"]:
        schema = {**schema, "type": "string"}
    return {**schema, "minLength": 1}


def _schema(content: dict[str, Any]) -> dict[str, Any]:
    """A content entry: ``{"schema": ...}`` as given, or a bare schema wrapped."""
    return content if "schema" in content else {"schema": content}


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
BINARY = {"type": "string", "format": "binary"}
OBJECT = {"type": "object"}
RAW_IMAGE = {media: {"schema": BINARY} for media in IMAGE_TYPES}  # an image as the whole body
ERROR_DETAIL = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": STRING, "message": STRING, "field": STRING, "limit": {}},
}
# every native JSON answer and a done task's data: the verdict on the matte (alphacut.verdict)
VERDICT: dict[str, Any] = {
    "confidence": {
        "type": "number",
        "minimum": 0,
        "maximum": 1,
        "description": "how likely the matte is right (higher: more likely); fitted on the eval set",
    },
    "unsure": {"type": "boolean", "description": "true: a person should look at this result"},
    "reasons": {
        "type": "array",
        "items": {
            "type": "string",
            "enum": list(REASONS),
        },
        "description": "what the verdict saw, the weightiest first (said whether or not it is unsure)",
    },
}


def success_envelope(data: dict[str, Any]) -> dict[str, Any]:
    """The PicWish-style answer the task routes give: status, message, request_id and ``data``."""
    return {
        "type": "object",
        "required": ["status", "message", "data"],
        "properties": {"status": INTEGER, "message": STRING, "request_id": STRING, "data": data},
    }


# a task as GET /v1/tasks/{task_id} answers it (the answer's data)
TASK_DATA: dict[str, Any] = {
    "type": "object",
    "required": ["task_id", "state", "progress"],
    "properties": {
        "task_id": STRING,
        "name": {"type": "string", "description": "the name the task was given (name on POST /v1/tasks)"},
        "state": {"type": "integer", "description": "1 done, 0/2/3/4 under way, <0 failed"},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "type": STRING,
        "output_type": STRING,
        "return_type": STRING,
        "created_at": INTEGER,
        "processed_at": {"type": ["integer", "null"]},
        "completed_at": {"type": ["integer", "null"]},
        "image": STRING,
        "mask": STRING,
        "width": {"type": ["integer", "null"]},
        "height": {"type": ["integer", "null"]},
        "error": {"type": "object", "properties": {"name": STRING, "message": STRING}},
        "check": {"$ref": "#/components/schemas/PresetCheck"},
        **VERDICT,
        "result_id": {
            "type": "string",
            "description": "a done task's matte, kept 24 h: a task with it and refine "
            "strokes (and no image) touches the result up, charged 0",
        },
        "cost": {
            "type": "number",
            "description": "a done task of a credit key: the credits it was charged, once",
        },
    },
}

COMPONENTS: dict[str, Any] = {
    "securitySchemes": {"api_key": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
    "schemas": {
        "Error": {
            "type": "object",
            "required": ["error", "request_id"],
            "properties": {"request_id": STRING, "error": ERROR_DETAIL, "message": STRING},
        },
        "GatewayMessage": {
            "type": "object",
            "required": ["message"],
            "properties": {"message": STRING},
            "description": "API Gateway's own answer (no function ran)",
        },
        "RemoveBgErrors": {
            "type": "object",
            "required": ["errors"],
            "properties": {
                "errors": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["title", "code"],
                        "properties": {"title": STRING, "code": STRING, "detail": STRING},
                    },
                }
            },
        },
        "Delivered": {
            "type": ["object", "null"],
            "properties": {
                "content_type": STRING,
                "bytes": INTEGER,
                "base64": STRING,
                "url": STRING,
                "expires_at": INTEGER,
            },
        },
        "CutoutAnswer": {
            "type": "object",
            "properties": {
                "request_id": STRING,
                "type": STRING,
                "width": INTEGER,
                "height": INTEGER,
                "input": {"type": "object", "properties": {"width": INTEGER, "height": INTEGER}},
                "found": {"type": "boolean"},
                "bbox": {
                    "type": ["object", "null"],
                    "properties": {k: INTEGER for k in ("left", "top", "right", "bottom", "width", "height")},
                },
                "image": {"$ref": "#/components/schemas/Delivered"},
                "mask": {"$ref": "#/components/schemas/Delivered"},
                "timings_ms": {"type": "object", "additionalProperties": {"type": "number"}},
                "check": {"$ref": "#/components/schemas/PresetCheck"},
                "enlargement": {
                    "type": "number",
                    "description": "where the subject was resized: its scale from the photo as sent",
                },
                "model": {"type": "string", "description": "the matting model that made the matte"},
                "result_id": {
                    "type": "string",
                    "description": "this result's matte, kept 24 h: send it with refine strokes (and no "
                    "image) to touch the result up, charged 0",
                },
                **VERDICT,
            },
        },
        "PresetCheck": {
            "type": "object",
            "description": "with a preset: its rules measured on the delivered result",
            "required": ["preset", "passed", "unsure", "rules"],
            "properties": {
                "preset": STRING,
                "passed": {"type": "boolean"},
                "unsure": {
                    "type": "boolean",
                    "description": "the verdict doubts the result: a pass is not to be taken as it is",
                },
                "reasons": {"type": "array", "items": STRING, "description": "when unsure: the verdict's"},
                "rules": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["rule", "passed"],
                        "properties": {
                            "rule": STRING,
                            "passed": {"type": "boolean"},
                            "measured": {},
                            "required": {},
                            "advice": {
                                "type": "boolean",
                                "description": "true: a recommendation, said but never failed on",
                            },
                        },
                    },
                },
            },
        },
        "Task": success_envelope(TASK_DATA),
        "TaskList": success_envelope(
            {
                "type": "object",
                "required": ["tasks", "next"],
                "properties": {
                    "tasks": {
                        "type": "array",
                        "description": "newest first: each as GET /v1/tasks/{task_id} answers it (its links "
                        "unchecked), with the options it was sent with",
                        "items": {
                            **TASK_DATA,
                            "required": [*TASK_DATA["required"], "options"],
                            "properties": {**TASK_DATA["properties"], "options": {"type": "object"}},
                        },
                    },
                    "next": {"type": ["string", "null"], "description": "the following page's cursor"},
                },
            }
        ),
        "Usage": {
            "type": "object",
            "required": ["request_id", "key_id"],
            "properties": {
                "request_id": STRING,
                "key_id": STRING,
                "account_id": {
                    "type": "string",
                    "description": "the account whose balance and usage these are (its keys read the same)",
                },
                "daily_quota": {"type": ["integer", "null"]},
                "credit_based": {"type": "boolean"},
                "balance": {"type": ["number", "null"], "description": "credits left (credit-based keys)"},
                "days": {"type": "array", "items": {"type": "object"}},
                "total": {
                    "type": "object",
                    "properties": {"calls": INTEGER, "charged": INTEGER, "credits": {"type": "number"}},
                },
            },
        },
    },
}


def build_openapi(
    routes: list[RouteDoc],
    server_url: str | None = None,
    title: str = "alphacut",
    models: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``models``: the registry's matting models, the values ``model`` takes (none: any name)."""
    paths: dict[str, Any] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method] = _operation(route, models)
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": __version__,
            "description": "Background removal: cutout, selfie, costume, async tasks, usage, and routes "
            "compatible with other services. Every answer carries a request id; "
            "every error names the field or the reason.",
        },
        "tags": [
            {"name": "native", "description": "alphacut's own API (v1)"},
            {
                "name": "vendor-compatible",
                "description": "drop-in routes answering in another service's "
                "shape: change the base URL and keep the client",
            },
        ],
        "paths": paths,
        "components": COMPONENTS,
    }
    if server_url:
        spec["servers"] = [{"url": server_url}]
    return spec
