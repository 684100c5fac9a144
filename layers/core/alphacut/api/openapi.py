"""The OpenAPI 3.1 document, generated from the route table and the options model.

Usage::

    spec = build_openapi(ROUTES, server_url="https://abc.execute-api.eu-west-1.amazonaws.com/prod")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alphacut import __version__
from alphacut.options import MAX_TARGET_SIDE, ImageFormat, OutputKind, SubjectType

ERROR_STATUSES = {
    400: "a field is wrong (named in error.field)",
    401: "no or unknown API key (x-api-key)",
    413: "image over the byte or pixel limit",
    415: "not an image, or a body type not read",
    422: "image damaged, too small, or image_url not downloadable",
    429: "over the usage plan's rate or daily quota",
    500: "server error (quote request_id)",
}


@dataclass(frozen=True)
class RouteDoc:
    path: str
    method: str
    summary: str
    description: str = ""
    types: tuple[SubjectType, ...] = ()  # image routes: the types they accept
    extra_responses: dict[int, str] = field(default_factory=dict)
    tag: str = "native"  # native | vendor-compatible
    key_required: bool = True

    @property
    def takes_image(self) -> bool:
        return bool(self.types)


def option_schemas(types: tuple[SubjectType, ...]) -> dict[str, dict[str, Any]]:
    if types == (SubjectType.COSTUME,):
        from alphacut.costume import Garment

        return _common_options(types) | {
            "classes": {
                "type": "string",
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
    return _common_options(types)


def _common_options(types: tuple[SubjectType, ...]) -> dict[str, dict[str, Any]]:
    return {
        "type": {"type": "string", "enum": [t.value for t in types], "default": types[0].value},
        "output": {"type": "string", "enum": [o.value for o in OutputKind], "default": "image"},
        "channels": {"type": "string", "enum": ["rgba", "alpha"], "description": "alpha = output=mask"},
        "format": {
            "type": "string",
            "enum": [f.value for f in ImageFormat] + ["jpeg", "auto"],
            "default": "png",
            "description": "zip: color.jpg + alpha.png; auto: png, or jpg when a background fills it",
        },
        "size": {
            "type": "string",
            "default": "full",
            "description": "the result's most pixels: preview (0.25 MP, a faster model), medium (1.5 MP), "
            "hd (4 MP), full, or megapixels such as 10MP",
        },
        "quality": {
            "type": "string",
            "enum": ["auto", "fast", "best"],
            "default": "auto",
            "description": "best: the model on the picture and its mirror, averaged (twice the model time); "
            "auto: fast here, best on the GPU task path",
        },
        "roi": {"type": "string", "description": "x1 y1 x2 y2 in px or %: only the subject inside is kept"},
        "bg_color": {
            "type": "string",
            "description": "hex (#ffffff, fff; #ffffff80 see-through) or colour name; jpg defaults to white",
        },
        "bg_image_url": {
            "type": "string",
            "format": "uri",
            "description": "a background picture, scaled to cover (or upload bg_image_file, "
            "or bg_image_base64 in JSON)",
        },
        "crop": {"type": "boolean", "default": False, "description": "crop to the subject"},
        "crop_margin": {
            "type": "string",
            "default": "0",
            "description": "12, 12px or 5%; two or four lengths as CSS margins",
        },
        "scale": {
            "type": "string",
            "description": "original, or 10% to 100%: the subject's share of the canvas",
        },
        "position": {"type": "string", "description": "original, center, or x% y% (scale implies center)"},
        "target_width": {"type": "integer", "minimum": 1, "maximum": MAX_TARGET_SIDE},
        "target_height": {"type": "integer", "minimum": 1, "maximum": MAX_TARGET_SIDE},
        "return": {
            "type": "string",
            "enum": ["binary", "base64", "url"],
            "description": "default: binary if Accept asks for image/*, else base64",
        },
    }


def _image_operation(route: RouteDoc) -> dict[str, Any]:
    options = option_schemas(route.types)
    parameters = [
        {"name": name, "in": "query", "required": False, "schema": schema} for name, schema in options.items()
    ]
    multipart = {
        "type": "object",
        "properties": {
            "image_file": {"type": "string", "format": "binary"},
            "image": {"type": "string", "format": "binary"},
            "bg_image_file": {"type": "string", "format": "binary"},
            **options,
        },
    }
    as_json = {
        "type": "object",
        "properties": {
            "image_base64": {"type": "string", "description": "base64 or a data: URL"},
            "bg_image_base64": {"type": "string", "description": "a background picture, base64"},
            "image_url": {"type": "string", "format": "uri", "description": "http(s), public addresses only"},
            **options,
        },
    }
    image_answer = {"type": "string", "format": "binary"}
    return {
        "parameters": parameters,
        "requestBody": {
            "required": True,
            "content": {
                "image/*": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {"schema": multipart},
                "application/json": {"schema": as_json},
            },
        },
        "responses": {
            "200": {
                "description": "the cutout",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/CutoutAnswer"}},
                    "image/png": {"schema": image_answer},
                    "image/jpeg": {"schema": image_answer},
                    "image/webp": {"schema": image_answer},
                    "application/zip": {"schema": image_answer},
                },
            },
            **_error_responses(route),
        },
    }


def _error_responses(route: RouteDoc) -> dict[str, Any]:
    statuses = dict(ERROR_STATUSES) | route.extra_responses
    if not route.takes_image:
        statuses = {k: v for k, v in statuses.items() if k in (401, 429, 500)} | route.extra_responses
    return {
        str(status): {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for status, text in sorted(statuses.items())
    }


COMPONENTS = {
    "securitySchemes": {"api_key": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
    "schemas": {
        "Error": {
            "type": "object",
            "required": ["error", "request_id"],
            "properties": {
                "request_id": {"type": "string"},
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": "string"},
                        "limit": {},
                    },
                },
            },
        },
        "Delivered": {
            "type": ["object", "null"],
            "properties": {
                "content_type": {"type": "string"},
                "bytes": {"type": "integer"},
                "base64": {"type": "string"},
                "url": {"type": "string"},
                "expires_at": {"type": "integer"},
            },
        },
        "CutoutAnswer": {
            "type": "object",
            "properties": {
                "request_id": {"type": "string"},
                "type": {"type": "string"},
                "width": {"type": "integer"},
                "height": {"type": "integer"},
                "input": {
                    "type": "object",
                    "properties": {"width": {"type": "integer"}, "height": {"type": "integer"}},
                },
                "found": {"type": "boolean"},
                "bbox": {
                    "type": ["object", "null"],
                    "properties": {
                        k: {"type": "integer"} for k in ("left", "top", "right", "bottom", "width", "height")
                    },
                },
                "image": {"$ref": "#/components/schemas/Delivered"},
                "mask": {"$ref": "#/components/schemas/Delivered"},
                "timings_ms": {"type": "object", "additionalProperties": {"type": "number"}},
            },
        },
    },
}


def build_openapi(routes: list[RouteDoc], server_url: str | None = None) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in routes:
        operation_id = "".join(c if c.isalnum() else "_" for c in f"{route.method}_{route.path.strip('/')}")
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": operation_id,
            "tags": [route.tag],
            "security": [{"api_key": []}] if route.key_required else [],
        }
        if route.description:
            operation["description"] = route.description
        if route.takes_image:
            operation.update(_image_operation(route))
        else:
            operation["responses"] = {"200": {"description": route.summary}, **_error_responses(route)}
        paths.setdefault(route.path, {})[route.method] = operation
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "alphacut",
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
