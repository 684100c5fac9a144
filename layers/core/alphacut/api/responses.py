"""Shape a pipeline result (or an error) into an API Gateway proxy answer.

Delivery (the ``return`` field): ``binary`` (the image itself, metadata in X- headers),
``base64`` (JSON with the bytes inline) or ``url`` (JSON with signed S3 URLs, 1 hour). Without
``return``, a client whose Accept header asks for image/* gets ``binary``; everyone else JSON
with base64.

Usage::

    delivery = choose_delivery(request.params, request.accept, options)
    response = result_response(result, delivery, request_id, store)
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response

from alphacut.deadlines import deadline, passed, sync_call_deadline
from alphacut.errors import AlphacutError, DeadlineExceeded, InvalidOption, ResponseTooLarge, http_status
from alphacut.options import CutoutOptions, OutputKind

if TYPE_CHECKING:  # the API's light functions (tasks, usage) never load the pipeline
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

    from alphacut.aws.tasks.results import ResultStore
    from alphacut.pipeline import CostumeResult, CutoutResult

# what app.use(middlewares=[...]) takes: the app and the rest of the stack in, the answer out
type Middleware = Callable[[ApiGatewayResolver, NextMiddleware], Response[Any]]

JSON = "application/json"
# Lambda's limit for a synchronous invocation's answer (the proxy answer as JSON, body base64
# for binary). Over it API Gateway answers 502 to a client whose call already ran.
LAMBDA_ANSWER_LIMIT = 6 * 1024 * 1024
# What the metering adds after the check (charge/remain headers and fields)
ANSWER_DECORATION_BYTES = 1024


class Delivery(StrEnum):
    BINARY = "binary"
    BASE64 = "base64"
    URL = "url"


def choose_delivery(params: dict[str, str], accept: str, options: CutoutOptions) -> Delivery:
    raw = params.get("return")
    if raw:
        try:
            delivery = Delivery(raw.strip().lower())
        except ValueError:
            raise InvalidOption(f"must be one of binary, base64, url, not {raw!r}", field="return") from None
    else:
        wants_image = any(part.strip().startswith("image/") for part in accept.split(","))
        delivery = (
            Delivery.BINARY if wants_image and options.output is not OutputKind.BOTH else Delivery.BASE64
        )
    if delivery is Delivery.BINARY and options.output is OutputKind.BOTH:
        raise InvalidOption(
            "binary delivers one image: use output=image or mask, or return=base64/url", field="return"
        )
    return delivery


def bbox_dict(result: CutoutResult) -> dict[str, int] | None:
    if result.bbox is None:
        return None
    left, top, right, bottom = result.bbox
    return {
        "left": left,
        "top": top,
        "right": right,
        "bottom": bottom,
        "width": right - left,
        "height": bottom - top,
    }


def _timings(result: CutoutResult) -> dict[str, float]:
    return {name: round(ms, 1) for name, ms in result.timings.items()} | {
        "total": round(result.timings.total, 1)
    }


def metadata_headers(result: CutoutResult, request_id: str) -> dict[str, str]:
    headers = {
        "X-Request-Id": request_id,
        "X-Alphacut-Type": result.type.value,
        "X-Alphacut-Width": str(result.width),
        "X-Alphacut-Height": str(result.height),
        "X-Alphacut-Timings": ",".join(f"{k}={v}" for k, v in _timings(result).items()),
    }
    if result.bbox is not None:
        headers["X-Alphacut-Bbox"] = ",".join(map(str, result.bbox))
    if result.check is not None:
        headers["X-Alphacut-Check"] = result.check.header()
    if result.verdict is not None:
        headers.update(result.verdict.headers())
    if result.enlargement is not None:
        headers["X-Alphacut-Enlargement"] = str(result.enlargement)
    if result.model is not None:
        headers["X-Alphacut-Model"] = result.model
    if result.result_id is not None:
        headers["X-Alphacut-Result-Id"] = result.result_id
    return headers


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers=headers or {},
    )


def proxy_answer_bytes(response: Response[Any]) -> int:
    """The size of ``response`` as the proxy answer Lambda returns to API Gateway."""
    body = response.body
    if isinstance(body, bytes | bytearray):
        body_bytes = 4 * ((len(body) + 2) // 3)  # base64
    else:
        body_bytes = len(json.dumps(body or ""))  # a JSON string, escapes included
    headers = json.dumps({k: v for k, v in (response.headers or {}).items()}, default=str)
    return body_bytes + len(headers) + 200  # statusCode, isBase64Encoded, key names


def ensure_deliverable(response: Response[Any]) -> Response[Any]:
    """Raise ``ResponseTooLarge`` for an answer Lambda could not return: it must be refused
    (and not charged) here, since past this point the client would only see a 502."""
    size = proxy_answer_bytes(response) + ANSWER_DECORATION_BYTES
    if size > LAMBDA_ANSWER_LIMIT:
        raise ResponseTooLarge(
            f"the answer would be {size} bytes, over the {LAMBDA_ANSWER_LIMIT} bytes a "
            "synchronous call can return: ask for return=url (signed links), or a smaller "
            "output",
            field="return",
            limit=LAMBDA_ANSWER_LIMIT,
        )
    return response


def result_response(
    result: CutoutResult,
    delivery: Delivery,
    request_id: str,
    store: ResultStore | None = None,
    key_prefix: str = "results",
) -> Response[Any]:
    """The answer for a finished cutout, delivered as asked."""
    if delivery is Delivery.BINARY:
        data, content_type = result.single_image
        return Response(
            status_code=200,
            content_type=content_type,
            body=data,
            headers=metadata_headers(result, request_id),
        )
    body: dict[str, Any] = {
        "request_id": request_id,
        "type": result.type.value,
        "width": result.width,
        "height": result.height,
        "input": {"width": result.input_width, "height": result.input_height},
        "found": result.found,
        "bbox": bbox_dict(result),
        "timings_ms": _timings(result),
    }
    if result.verdict is not None:
        body.update(result.verdict.to_dict())
    if result.check is not None:
        body["check"] = result.check.to_dict()
    if result.enlargement is not None:
        body["enlargement"] = result.enlargement
    if result.model is not None:
        body["model"] = result.model
    if result.result_id is not None:
        body["result_id"] = result.result_id
    folder = f"{key_prefix}/{time.strftime('%Y-%m-%d', time.gmtime())}/{request_id}"
    body.update(_images(result, delivery, store, folder))
    return json_response(200, body, {"X-Request-Id": request_id})


def deliver(
    data: bytes | None, content_type: str, delivery: Delivery, store: ResultStore | None, key: str
) -> dict[str, Any] | None:
    """One image inside a JSON answer: inline base64, or a signed URL to it in S3."""
    if data is None:
        return None
    entry: dict[str, Any] = {"content_type": content_type, "bytes": len(data)}
    if delivery is Delivery.URL:
        if store is None:
            raise ValueError("return=url needs a result store")
        extension = content_type.split("/")[1].replace("jpeg", "jpg")
        link = store.put(f"{key}.{extension}", data, content_type)
        entry.update(url=link.url, expires_at=link.expires_at)
    else:
        entry["base64"] = base64.b64encode(data).decode("ascii")
    return entry


def _images(
    result: CutoutResult, delivery: Delivery, store: ResultStore | None, folder: str, prefix: str = ""
) -> dict[str, Any]:
    return {
        "image": deliver(result.image, result.content_type or "", delivery, store, f"{folder}/{prefix}image"),
        "mask": deliver(result.mask, "image/png", delivery, store, f"{folder}/{prefix}mask"),
    }


def costume_response(
    result: CostumeResult,
    delivery: Delivery,
    request_id: str,
    store: ResultStore | None = None,
    key_prefix: str = "results",
) -> Response[Any]:
    """The outfit, one entry per garment asked for (absent ones say so, with no image), the garments
    found with their share of the image, and the class map when a mask was asked for."""
    from alphacut.costume import MIN_SHARE

    if delivery is Delivery.BINARY:
        raise InvalidOption(
            "the costume answer holds several images: use return=base64 or url", field="return"
        )
    folder = f"{key_prefix}/{time.strftime('%Y-%m-%d', time.gmtime())}/{request_id}"
    outfit = result.outfit
    garments = []
    for item in result.garments:
        entry: dict[str, Any] = {
            "class": item.garment.value,
            "present": item.present,
            "share": round(item.share, 5),
        }
        if item.result is not None:
            entry.update(width=item.result.width, height=item.result.height, bbox=bbox_dict(item.result))
            entry.update(_images(item.result, delivery, store, folder, f"{item.garment.value}_"))
        garments.append(entry)
    found = sorted(
        ((g.value, share) for g, share in result.shares.items() if share >= MIN_SHARE),
        key=lambda pair: -pair[1],
    )
    body: dict[str, Any] = {
        "request_id": request_id,
        "type": "costume",
        "width": outfit.width,
        "height": outfit.height,
        "input": {"width": outfit.input_width, "height": outfit.input_height},
        "found": outfit.found,
        "bbox": bbox_dict(outfit),
        "outfit": _images(outfit, delivery, store, folder, "outfit_"),
        "classes": garments,
        "classes_found": [{"class": name, "share": round(share, 5)} for name, share in found],
        "class_map": deliver(result.class_map, "image/png", delivery, store, f"{folder}/class_map"),
        "timings_ms": _timings(result.outfit),
    }
    if outfit.verdict is not None:  # the outfit's: the garments are cut from its matte
        body.update(outfit.verdict.to_dict())
    return json_response(200, body, {"X-Request-Id": request_id})


def error_response(error: BaseException, request_id: str) -> Response[Any]:
    """Every error answer: the status from ``http_status``, a body that names what is wrong."""
    if isinstance(error, AlphacutError):
        detail = error.to_dict()
    else:
        detail = {
            "code": "internal_error",
            "message": "internal error: quote the request id when reporting it",
        }
    headers = {"X-Request-Id": request_id}
    if getattr(error, "retry_after", None):  # a 429 says when to come back
        headers["Retry-After"] = str(error.retry_after)  # type: ignore[attr-defined]
    return json_response(http_status(error), {"error": detail, "request_id": request_id}, headers)


def make_deadline_guard(on_error: Callable[[Exception], Response[Any]]) -> Middleware:
    """Run the route under the call's one deadline (API Gateway's 29 s from when it received the
    request, less a margin: ``alphacut.deadlines``); an answer ready only after it becomes a 504
    ``deadline_exceeded``, so it is never charged nor kept (the gateway answered 504 already).

    Usage::

        app.use(middlewares=[..., make_deadline_guard(on_error), make_answer_guard(on_error)])
    """

    def deadline_guard(app: ApiGatewayResolver, next_middleware: NextMiddleware) -> Response[Any]:
        context = app.current_event.raw_event.get("requestContext") or {}
        with deadline(sync_call_deadline(context.get("requestTimeEpoch"))):
            response = next_middleware(app)
            late = passed()
        if late and response.status_code < 500:
            return on_error(
                DeadlineExceeded("the answer was ready after the API's 29 s: it was not delivered")
            )
        return response

    return deadline_guard


def make_answer_guard(on_error: Callable[[Exception], Response[Any]]) -> Middleware:
    """The innermost middleware: every failure becomes its answer (``on_error``, the app's error
    table), and an answer over Lambda's limit becomes a 413, before idempotency keeps it and
    metering charges it.

    Usage::

        guard = make_answer_guard(on_error)
        app.use(middlewares=[make_metering(keyless), make_idempotency(on_error, keyless), guard])
    """

    def answer_guard(app: ApiGatewayResolver, next_middleware: NextMiddleware) -> Response[Any]:
        try:
            return ensure_deliverable(next_middleware(app))
        except Exception as error:  # noqa: BLE001 - every failure is an answer
            return on_error(error)

    return answer_guard
