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
(``app.append_context(usage_headers=f)``, ``f(Usage) -> headers``).

For a key on a credit-based plan, ``charge`` is the credits the call cost (0 when nothing was
charged) and ``remain`` the balance left; the call's price was reserved before its model ran
(``alphacut.api.credits``), and here it is committed with the count, in one transaction, or
released when nothing billable went out.

Usage::

    app.use(
        middlewares=[make_metering(keyless), make_idempotency(on_error, keyless), make_answer_guard(on_error)]
    )
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.metrics import MetricUnit

from alphacut.api import services
from alphacut.api.credits import CreditGate, open_gate
from alphacut.api.plan_model import plan_model
from alphacut.pricing import credits

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

    from alphacut.api.responses import Middleware
    from alphacut.aws.usage import UsageMeter

metrics = Metrics()  # Powertools' metrics are one set per process: the handler's log_metrics flushes
CHARGE_HERE = "here"
CHARGED_BY_TASK = "task"


@dataclass(frozen=True)
class Usage:
    """What an answer says about its cost: charged or not; for a credit-based key the credits it
    cost (``credits``, None for a quota key) and the balance left, else the calls left today."""

    charged: bool
    credits: int | float | None = None
    remain: int | float | None = None
    quota: int | None = None

    @property
    def charge(self) -> bool | int | float:
        return self.credits if self.credits is not None else self.charged


def _decorate(response: Response[Any], usage: Usage, exact_envelope: bool) -> Response[Any]:
    response.headers = dict(response.headers or {})
    charge = usage.charge
    response.headers["X-Alphacut-Charge"] = str(charge).lower() if isinstance(charge, bool) else str(charge)
    if usage.remain is not None:
        response.headers["X-Alphacut-Remain"] = str(usage.remain)
    content_type = str(response.headers.get("Content-Type") or "")
    if isinstance(response.body, str) and (not content_type or "json" in content_type):
        try:
            body = json.loads(response.body)
        except ValueError:
            return response
        if isinstance(body, dict) and (not exact_envelope or "charge" in body):
            body["charge"] = charge
            body["remain"] = usage.remain
            response.body = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return response


def make_metering(keyless: frozenset[str] = frozenset()) -> Middleware:
    """The middleware (outermost: it counts every answer, refusals included); ``keyless``: the
    routes served without a key (the page, the reference, result links), never counted."""

    def metering(app: ApiGatewayResolver, next_middleware: NextMiddleware) -> Response[Any]:
        event = app.current_event.raw_event
        if not services.key_required(event, keyless):
            return next_middleware(app)
        meter = services.usage_meter()
        owner = services.api_key_owner(event)
        route = event.get("resource") or event.get("path") or "?"
        call_id = services.request_id(event, app.lambda_context)
        credit_based = meter is not None and meter.credit_based(owner)
        plan = meter.plan(owner) if meter is not None else None  # read (and kept) by credit_based
        with plan_model(plan.model if plan is not None else None):
            if meter is None or not credit_based:
                response = next_middleware(app)
                gate = None
            else:
                gate = CreditGate(meter.credits, owner, call_id, route, services.SETTINGS)
                with open_gate(gate):
                    try:
                        response = next_middleware(app)
                    except BaseException:
                        gate.release()
                        raise
        context = app.context
        delivered = response.status_code == 200 and not context.get("replayed")
        # an empty picture (no subject found) is delivered and never charged, on every route
        charge_here = delivered and context.get("charge") == CHARGE_HERE and not context.get("empty_result")
        by_task = delivered and context.get("charge") == CHARGED_BY_TASK
        usage = Usage(charge_here or by_task)
        if meter is not None:
            usage = settle_call(
                meter, gate, CallOutcome(owner, route, call_id, credit_based, charge_here, by_task)
            )
        response = _decorate(response, usage, bool(context.get("exact_envelope")))
        if context.get("usage_headers"):
            response.headers.update(context["usage_headers"](usage))
        return response

    return metering


@dataclass(frozen=True)
class CallOutcome:
    """What the metering needs to know of one answered call."""

    owner: str  # the API key id
    route: str
    call_id: str
    credit_based: bool
    charge_here: bool  # a billable result was delivered by this call
    by_task: bool = False  # a synchronous task delivered it (its state machine charged it)


def settle_call(meter: UsageMeter, gate: CreditGate | None, call: CallOutcome) -> Usage:
    """The money side of an answered call: its reservation committed with its count (one
    transaction) or released, the call counted, and what the answer says it cost. The metering
    middleware runs this for every call; benchmarks/bench_money.py runs it under load."""
    from alphacut.aws.usage import MeteredCall, utc_day

    hold_finished = gate.finished() if gate is not None else False  # the hold exists before it is settled
    paid, hold = (gate.amount, gate.hold) if gate is not None and call.charge_here else (0, "")
    if gate is not None and not call.charge_here:
        gate.release()
    meter.count(
        MeteredCall(
            call.owner,
            call.route,
            call.charge_here,
            call.call_id,
            day=utc_day(meter.clock()),
            credits=paid,
            hold=hold,
            hold_finished=hold_finished,
        )
    )
    if paid:
        metrics.add_metric(name="CreditsCharged", unit=MetricUnit.Count, value=credits(paid))
    task_paid = gate.task_amount if gate is not None and call.by_task else 0
    # a delivered call's commit leaves the balance as its reservation left it: no read
    left = gate.left if gate is not None and paid and not task_paid else None
    charged = call.charge_here or call.by_task
    return _usage(meter, call.owner, call.credit_based, charged, paid + task_paid, left)


def _usage(
    meter: UsageMeter, owner: str, credit_based: bool, charged: bool, paid: int, left: int | None = None
) -> Usage:
    """The answer's cost and what is left: credits for a credit-based key (``left``: the balance its
    reservation left, else read), calls today else."""
    if credit_based:
        balance = left if left is not None else meter.credits.balance(owner)
        return Usage(charged, credits(paid), credits(balance or 0))
    quota = meter.daily_quota(owner)
    calls_today = meter.calls_today(owner) if quota is not None else None
    remain = max(quota - calls_today, 0) if quota is not None and calls_today is not None else None
    return Usage(charged, None, remain, quota)
