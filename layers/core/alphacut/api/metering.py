"""Pay-per-use around every route: count the call, charge it only when a result was delivered,
and tell the caller (``charge``, ``remain``).

A route says it delivered something billable with ``app.append_context(charge=CHARGE_HERE)``, and
``empty_result=True`` when the picture holds no subject (delivered, never charged, on every route); a
synchronous task that finished says ``CHARGED_BY_TASK`` (the state machine charged it, once).
Everything else (errors, polls, usage reports, async task creation, idempotent replays) is
counted, not charged. The middlewares inside this one (``alphacut.api.idempotency``, the answer
guard) have already turned failures and undeliverable answers into error answers, so a charge
is only ever for a 200 that goes out.

``charge`` and ``remain`` go in ``X-Alphacut-Charge`` / ``X-Alphacut-Remain`` headers on every
answer, and into JSON bodies too unless the route answers in a vendor's exact envelope
(``app.append_context(exact_envelope=True)``; an envelope that has the fields, JD NeuHub's, gets them
filled in). A vendor that says the same in its own headers names a function for them
(``app.append_context(usage_headers=f)``, ``f(charged, remain, quota) -> headers``).

Usage::

    app.use(
        middlewares=[make_metering(keyless), make_idempotency(on_error, keyless), make_answer_guard(on_error)]
    )
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response

from alphacut.api import process

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

    from alphacut.api.responses import Middleware

CHARGE_HERE = "here"
CHARGED_BY_TASK = "task"


def _decorate(
    response: Response[Any], charge: bool, remain: int | None, exact_envelope: bool
) -> Response[Any]:
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


def make_metering(keyless: frozenset[str] = frozenset()) -> Middleware:
    """The middleware (outermost: it counts every answer, refusals included); ``keyless``: the
    routes served without a key (the page, the reference, result links), never counted."""

    def metering(app: ApiGatewayResolver, next_middleware: NextMiddleware) -> Response[Any]:
        response = next_middleware(app)
        context = app.context
        event = app.current_event.raw_event
        if not process.key_required(event, keyless):
            return response
        meter = process.usage_meter()
        delivered = response.status_code == 200 and not context.get("replayed")
        # an empty picture (no subject found) is delivered and never charged, on every route
        charge_here = delivered and context.get("charge") == CHARGE_HERE and not context.get("empty_result")
        charged = charge_here or (delivered and context.get("charge") == CHARGED_BY_TASK)
        remain = quota = None
        if meter is not None:
            from alphacut.aws.usage import MeteredCall

            owner = process.api_key_owner(event)
            route = event.get("resource") or event.get("path") or "?"
            meter.count(MeteredCall(owner, route, charge_here, process.request_id(event, app.lambda_context)))
            quota = meter.daily_quota(owner)
            calls_today = meter.calls_today(owner) if quota is not None else None
            remain = max(quota - calls_today, 0) if quota is not None and calls_today is not None else None
        response = _decorate(response, charged, remain, bool(context.get("exact_envelope")))
        if context.get("usage_headers"):
            response.headers.update(context["usage_headers"](charged, remain, quota))
        return response

    return metering
