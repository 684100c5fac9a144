"""``Idempotency-Key``: a retried request is answered with the first request's answer instead of
being processed (and charged) again. A key reused for a different request is a 409; a key whose
first request is still running is a 409 that says to retry; a claim left by an invocation that
died is taken over once it is older than the function may run (``alphacut.aws.ledger.idempotency``).

What is kept is the answer as delivered (after the size guard), so a retry never replays an
answer the client could not have received. Answers of 5xx are not kept: the retry is processed.
A replayed answer says ``Idempotent-Replayed: true`` and is not charged (``replayed`` in the
resolver's context, read by the metering).

Usage::

    app.use(
        middlewares=[make_metering(keyless), make_idempotency(on_error, keyless), make_answer_guard(on_error)]
    )
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response

from alphacut.api import services
from alphacut.api.request import header
from alphacut.errors import Conflict, InvalidOption, RequestInProgress

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

    from alphacut.api.responses import Middleware
    from alphacut.aws.ledger.idempotency import Claim, IdempotencyStore

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 255


def fingerprint(event: dict[str, Any]) -> str:
    """What makes two requests "the same": method, path, query and body."""
    digest = hashlib.sha256()
    for part in (
        event.get("httpMethod", ""),
        event.get("path", ""),
        json.dumps(event.get("queryStringParameters") or {}, sort_keys=True),
        event.get("body") or "",
    ):
        digest.update(str(part).encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def answer_record(response: Response[Any]) -> bytes:
    body = response.body
    binary = isinstance(body, bytes | bytearray)
    return json.dumps(
        {
            "status": response.status_code,
            "headers": dict(response.headers or {}),
            "content_type": response.headers.get("Content-Type") if response.headers else None,
            "body": base64.b64encode(body).decode() if isinstance(body, bytes | bytearray) else (body or ""),
            "binary": binary,
        }
    ).encode()


def answer_from(record: bytes) -> Response[Any]:
    data = json.loads(record)
    body = base64.b64decode(data["body"]) if data["binary"] else data["body"]
    headers = {k: v for k, v in data["headers"].items() if k.lower() != "content-type"}
    return Response(
        status_code=data["status"],
        content_type=data.get("content_type") or "application/json",
        body=body,
        headers=headers,
    )


def _replay_or_refuse(store: IdempotencyStore, claim: Claim, event: dict[str, Any]) -> Response[Any]:
    if claim.fingerprint != fingerprint(event):
        raise Conflict("was already used for a different request", field=IDEMPOTENCY_HEADER)
    if not claim.done:
        raise RequestInProgress(
            "its first request is still being processed: retry later", field=IDEMPOTENCY_HEADER
        )
    response = answer_from(store.answer(claim))
    response.headers["Idempotent-Replayed"] = "true"
    return response


def make_idempotency(
    on_error: Callable[[Exception], Response[Any]], keyless: frozenset[str] = frozenset()
) -> Middleware:
    """The middleware; ``on_error`` turns its own refusals (409, 400) into answers; ``keyless``:
    the routes served without a key, where nothing is kept (no owner, nothing charged)."""

    def idempotency(app: ApiGatewayResolver, next_middleware: NextMiddleware) -> Response[Any]:
        event = app.current_event.raw_event
        key = header(event, IDEMPOTENCY_HEADER).strip()
        if not key or not services.key_required(event, keyless):
            return next_middleware(app)
        store = services.idempotency_store()
        if store is None:
            return next_middleware(app)
        owner = services.api_key_owner(event)
        try:
            if len(key) > MAX_IDEMPOTENCY_KEY:
                raise InvalidOption(
                    f"must be at most {MAX_IDEMPOTENCY_KEY} characters",
                    field=IDEMPOTENCY_HEADER,
                    limit=MAX_IDEMPOTENCY_KEY,
                )
            claim = store.claim(owner, key, fingerprint(event))
            if not claim.new:
                app.append_context(replayed=True)
                return _replay_or_refuse(store, claim, event)
        except Exception as error:  # noqa: BLE001 - a refusal is an answer (counted, never charged)
            return on_error(error)
        response = next_middleware(app)
        # a refusal before any work (a key that cannot pay, told once its body was read) is what the
        # metering answers before this middleware elsewhere: never kept, a retry after a top-up runs
        if response.status_code < 500 and not app.context.get("refused_before_work"):
            store.finish(owner, key, response.status_code, answer_record(response))
        else:
            store.release(owner, key)
        return response

    return idempotency
