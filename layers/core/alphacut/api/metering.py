"""Pay-per-use around every route: count the call, charge it only when a result was delivered,
tell the caller (``charge``, ``remain``), and answer a retried ``Idempotency-Key`` from the first
answer instead of processing (and charging) it again.

A route says it delivered something billable with ``app.append_context(charge=CHARGE_HERE)``; a
synchronous task that finished says ``CHARGED_BY_TASK`` (the state machine charged it, once).
Everything else (errors, polls, usage reports, async task creation) is counted, not charged.

``charge`` and ``remain`` go in ``X-Alphacut-Charge`` / ``X-Alphacut-Remain`` headers on every
answer, and into JSON bodies too unless the route answers in a vendor's exact envelope
(``app.append_context(exact_envelope=True)``; an envelope that has the fields, seed 001's, gets them
filled in).

Usage::

    app.use(middlewares=[make_metering(on_error=error_answer)])
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response

from alphacut.api import runtime
from alphacut.api.request import header
from alphacut.errors import Conflict, InvalidOption

CHARGE_HERE = "here"
CHARGED_BY_TASK = "task"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 255


def fingerprint(event: dict) -> str:
    """What makes two requests "the same": method, path, query and body."""
    digest = hashlib.sha256()
    for part in (event.get("httpMethod", ""), event.get("path", ""),
                 json.dumps(event.get("queryStringParameters") or {}, sort_keys=True), event.get("body") or ""):
        digest.update(str(part).encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def _response_record(response: Response) -> bytes:
    body = response.body
    encoded = isinstance(body, bytes | bytearray)
    return json.dumps({"status": response.status_code, "headers": dict(response.headers or {}),
                       "content_type": response.headers.get("Content-Type") if response.headers else None,
                       "body": base64.b64encode(body).decode() if encoded else (body or ""),
                       "binary": encoded}).encode()


def _response_from(record: bytes) -> Response:
    data = json.loads(record)
    body = base64.b64decode(data["body"]) if data["binary"] else data["body"]
    headers = {k: v for k, v in data["headers"].items() if k.lower() != "content-type"}
    return Response(status_code=data["status"], content_type=data.get("content_type") or "application/json",
                    body=body, headers=headers)


def _s3():
    from alphacut.aws.clients import client

    return client("s3")


def _decorate(response: Response, charge: bool, remain: int | None, exact_envelope: bool) -> Response:
    response.headers = dict(response.headers or {})
    response.headers["X-Alphacut-Charge"] = "true" if charge else "false"
    if remain is not None:
        response.headers["X-Alphacut-Remain"] = str(remain)
    content_type = str(response.headers.get("Content-Type") or "")
    if isinstance(response.body, str) and (not content_type or "json" in content_type):
        try:
            body = json.loads(response.body)
        except ValueError:
            return response
        if isinstance(body, dict) and (not exact_envelope or "charge" in body):
            body["charge"] = charge
            body["remain"] = remain
            response.body = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return response


def make_metering(on_error: Callable[[Exception], Response]):
    """The middleware; ``on_error`` turns an exception into the answer (the app's error table)."""

    def metering(app, next_middleware) -> Response:
        meter = runtime.usage_meter()
        event = app.current_event.raw_event
        owner = runtime.api_key_owner(event)
        route = event.get("resource") or event.get("path") or "?"
        idempotency_key = header(event, IDEMPOTENCY_HEADER).strip()
        claimed = replayed = False
        try:
            if idempotency_key and meter is not None:
                if len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
                    raise InvalidOption(f"must be at most {MAX_IDEMPOTENCY_KEY} characters",
                                        field=IDEMPOTENCY_HEADER, limit=MAX_IDEMPOTENCY_KEY)
                claim = meter.claim_idempotency(owner, idempotency_key, fingerprint(event))
                if claim.new:
                    claimed = True
                elif claim.fingerprint != fingerprint(event):
                    raise Conflict("was already used for a different request", field=IDEMPOTENCY_HEADER)
                elif claim.state != "done" or claim.response is None:
                    raise Conflict("its first request is still being processed: retry later",
                                              field=IDEMPOTENCY_HEADER)
                else:
                    stored = _s3().get_object(Bucket=runtime.SETTINGS.results_bucket, Key=claim.response["key"])
                    response = _response_from(stored["Body"].read())
                    response.headers["Idempotent-Replayed"] = "true"
                    replayed = True
            if not replayed:
                response = next_middleware(app)
        except Exception as error:  # every failure is an answer, counted below
            response = on_error(error)
        context = app.context
        status = response.status_code
        charge_here = context.get("charge") == CHARGE_HERE and status == 200 and not replayed
        charged = charge_here or (context.get("charge") == CHARGED_BY_TASK and status == 200 and not replayed)
        if claimed:
            if status < 500:
                key = f"idempotency/{owner}/{hashlib.sha256(idempotency_key.encode()).hexdigest()}.json"
                _s3().put_object(Bucket=runtime.SETTINGS.results_bucket, Key=key, Body=_response_record(response),
                                 ContentType="application/json")
                meter.finish_idempotency(owner, idempotency_key, status, key)
            else:
                meter.release_idempotency(owner, idempotency_key)
        remain = None
        if meter is not None:
            calls_today = meter.record(owner, route, charge_here)
            quota = meter.daily_quota(owner)
            remain = max(quota - calls_today, 0) if quota is not None else None
        return _decorate(response, charged, remain, bool(context.get("exact_envelope")))

    return metering
