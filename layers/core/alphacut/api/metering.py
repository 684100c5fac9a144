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

The key and its plan come from the key authorizer's context (``services.caller``): a call looks
neither up. First the key's rate (``alphacut.aws.ledger.limits``: over it, a 429 with Retry-After in the
route's own contract, ``refuse``). For a key on a credit-based plan, ``charge`` is the credits the
call cost (0 when nothing was charged) and ``remain`` the balance left; the call's price was
reserved before its model ran (``alphacut.api.credits``), and here it is committed with the count,
in one transaction, or released when nothing billable went out. For a key on a quota plan the
same gate takes one of the day's slots before the model runs, kept when a result is delivered and
given back when not; ``remain`` is the results left today (errors, polls and account reads spend
none).

Usage::

    app.use(
        middlewares=[
            make_metering(keyless, refuse), make_idempotency(on_error, keyless), make_answer_guard(on_error)
        ]
    )
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from alphacut.api import services
from alphacut.api.credits import CreditGate, KeySpending, QuotaGate, open_gate
from alphacut.api.limit_fields import KeyBudgetLeft, limit_fields
from alphacut.api.plan_model import plan_model
from alphacut.api.responses import error_response
from alphacut.aws.ledger.limits import RateLeft
from alphacut.caller_scope import caller_scope, test_payer
from alphacut.errors import InsufficientCredits, InsufficientScope, RateLimited, UnpaidRunsSpent
from alphacut.pricing import credits
from alphacut.scopes import ALL_SCOPES, admitted

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

    from alphacut.api.responses import Middleware
    from alphacut.aws.keys.authorizer import Caller
    from alphacut.aws.ledger.plans import Plan
    from alphacut.aws.ledger.usage import UsageMeter

logger = Logger(child=True)
metrics = Metrics()  # Powertools' metrics are one set per process: the handler's log_metrics flushes
CHARGE_HERE = "here"
CHARGED_BY_TASK = "task"
# a paid route that also makes touch-ups (no model, charged 0) cannot tell one before its body is
# read: a key that cannot pay is refused there instead, once the call is known to be no touch-up
REFUSED_UNLESS_TOUCH_UP = "refused_unless_touch_up"


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


Refuse = Callable[[str, Exception], "Response[Any]"]  # (the route's resource, the refusal) -> its answer


def make_metering(
    keyless: frozenset[str] = frozenset(),
    refuse: Refuse | None = None,
    paid: frozenset[str] = frozenset(),
    submits: frozenset[str] = frozenset(),
    scopes: Mapping[tuple[str, str], tuple[str, ...]] | None = None,
    touch_ups: frozenset[str] = frozenset(),
) -> Middleware:
    """The middleware (outermost: it counts every answer, refusals included); ``keyless``: the
    routes served without a key (the page, the reference, result links), never counted; ``refuse``:
    a refusal (over the key's rate, a balance that pays for nothing) answered in the route's own
    contract; ``paid``: the routes that do work a credit key pays for, where a balance below the
    cheapest price is refused before the body is read or any URL fetched; ``submits``: the paid
    routes that submit tasks, whose unpaid runs (in the task functions) are read, not remembered;
    ``scopes``: (route, method) -> the key scopes that open it, before anything else is done (a
    route not listed opens to a key holding every scope); ``touch_ups``: the paid routes that also
    make touch-ups, where that refusal waits for the route to read the body (``refuse_unless_touch_up``)."""

    def metering(app: ApiGatewayResolver, next_middleware: NextMiddleware) -> Response[Any]:
        event = app.current_event.raw_event
        if not services.key_required(event, keyless):
            return next_middleware(app)
        meter = services.usage_meter()
        caller = services.caller(event)
        owner = caller.key_id if caller is not None else "anonymous"  # rate, quota, unpaid runs
        account = caller.account_id if caller is not None else owner  # balance, usage, statements
        test = caller is not None and caller.test
        plan = caller.plan if caller is not None else None
        route = event.get("resource") or event.get("path") or "?"
        call_id = services.request_id(event, app.lambda_context)

        def refused(refusal: Exception) -> Response[Any]:
            answer = refuse(route, refusal) if refuse is not None else error_response(refusal, call_id)
            return _marked_test(answer) if test else answer

        if caller is not None and scopes is not None:
            method = str(event.get("httpMethod") or "").upper()
            opening = scopes.get((route, method), ALL_SCOPES)
            if not admitted(caller.scopes, opening):
                metrics.add_metric(name="ScopeRefused", unit=MetricUnit.Count, value=1)
                return refused(
                    InsufficientScope(
                        f"this key's scopes ({', '.join(caller.scopes)}) do not include "
                        f"{' or '.join(opening)}, which {method} {route} needs",
                        scope=opening[0],
                    )
                )

        rate_left = None
        if meter is not None and plan is not None:
            try:
                rate_left = meter.limits.admit(owner, plan)
            except RateLimited as refusal:  # not counted: API Gateway's own refusal never was either
                metrics.add_metric(name="RateLimited", unit=MetricUnit.Count, value=1)
                answer = refused(refusal)
                none_left = RateLeft(0, refusal.retry_after or 0)
                answer.headers = {
                    **dict(answer.headers or {}),
                    **limit_fields(plan, None, meter.clock(), rate=none_left),
                }
                return answer
        credit_based = plan is not None and plan.credit_based and not test
        gate = gate_for(meter, caller, call_id, route)
        # the unpaid-runs budget is the account's: every key of it, test and minted keys included
        broke = _cannot_pay(meter, gate, account, route, paid, route in submits)
        if broke is not None and route in touch_ups:
            app.append_context(**{REFUSED_UNLESS_TOUCH_UP: broke})
            broke = None
        # the process's memory of recent model runs is this key's alone (alphacut.models.recent)
        with plan_model(plan.model if plan is not None else None), caller_scope(owner, account, test):
            if broke is not None:
                response = refused(broke)
            elif gate is None:
                response = next_middleware(app)
            else:
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
            # a test key's calls are counted apart from the account's, never charged
            payer = test_payer(account) if test else account
            outcome = CallOutcome(payer, route, call_id, credit_based, charge_here, by_task)
            usage = settle_call(meter, gate, outcome, None if test else plan)
            # a run that delivered nothing billable (a test key's too: its slot was given back) is unpaid
            _count_unpaid_run(meter, gate, account, usage.charged)
            if test:  # what is left is the account's test results of the day
                usage = Usage(False, None, gate.left if isinstance(gate, QuotaGate) else None)
        response = _decorate(response, usage, bool(context.get("exact_envelope")))
        now = meter.clock() if meter is not None else time.time()
        test_quota = services.SETTINGS.test_results_per_day if test else None
        response.headers.update(
            limit_fields(plan, usage.remain, now, _spending_left(gate, caller), test_quota, rate_left)
        )
        if context.get("usage_headers"):
            response.headers.update(context["usage_headers"](usage))
        return _marked_test(response) if test else response

    return metering


def _cannot_pay(
    meter: UsageMeter | None,
    gate: CreditGate | QuotaGate | None,
    owner: str,
    route: str,
    paid: frozenset[str],
    submits_task: bool = False,
) -> Exception | None:
    """The refusal of a paid route's call before it reads its body (None: go on): a key whose unpaid
    model runs reached today's budget, or a credit key that cannot pay for anything."""
    if meter is None or route not in paid:
        return None
    try:
        budget = services.SETTINGS.unpaid_runs_per_day if submits_task else 0
        meter.limits.refuse_if_unpaid_spent(owner, budget)
        if isinstance(gate, CreditGate):
            gate.refuse_if_broke()
    except (InsufficientCredits, UnpaidRunsSpent) as refusal:
        return refusal
    return None


def refuse_unless_touch_up(app: ApiGatewayResolver) -> None:
    """In a route of ``touch_ups``, once its body says the call is no touch-up: the refusal the
    middleware held back (a key that cannot pay), before any download or model reservation."""
    refusal = app.context.get(REFUSED_UNLESS_TOUCH_UP)
    if refusal is not None:
        app.append_context(refused_before_work=True)  # not an answer to keep for a retry (idempotency)
        raise refusal


def _count_unpaid_run(
    meter: UsageMeter, gate: CreditGate | QuotaGate | None, owner: str, charged: bool
) -> None:
    """A model that ran for nothing charged (no subject, an answer too large or too late; for a test
    key, no test result kept) is one of the account's unpaid runs of the day
    (``alphacut.aws.ledger.limits``); a count that cannot be written is logged, never the call's
    failure."""
    if gate is None or not gate.model_ran or charged:
        return
    metrics.add_metric(name="UnpaidModelRuns", unit=MetricUnit.Count, value=1)
    try:
        meter.limits.count_unpaid_run(owner, services.SETTINGS.unpaid_runs_per_day)
    except ClientError:
        logger.warning("an unpaid run could not be counted", extra={"account": owner})


TEST_HEADER = "X-Alphacut-Test"


def _marked_test(response: Response[Any]) -> Response[Any]:
    response.headers = {**dict(response.headers or {}), TEST_HEADER: "true"}
    return response


def _spending_left(gate: CreditGate | QuotaGate | None, caller: Caller | None) -> KeyBudgetLeft | None:
    """The key's own daily limit and what is left of it after this call (None: no limit)."""
    if caller is None or caller.daily_limit is None or caller.test:
        return None
    spending = gate.spending if isinstance(gate, CreditGate) else None
    spent = spending.spent if spending is not None else None
    return KeyBudgetLeft(caller.daily_limit, None if spent is None else max(caller.daily_limit - spent, 0))


def gate_for(
    meter: UsageMeter | None, caller: Caller | None, call_id: str, route: str
) -> CreditGate | QuotaGate | None:
    """The gate a keyed call goes through: a test key's day of test results (never credits), the
    plan's credits (counted on the key's own daily spending too) or quota, or none."""
    if meter is None or caller is None or caller.plan is None:
        return None
    if caller.test:
        return QuotaGate(meter.limits, test_payer(caller.account_id), services.SETTINGS.test_results_per_day)
    gate = open_for(meter, caller.plan, caller.account_id, call_id, route)
    if isinstance(gate, CreditGate):
        gate.spending = KeySpending(meter.key_spend, caller.key_id, caller.daily_limit)
    return gate


def open_for(
    meter: UsageMeter | None, plan: Plan | None, owner: str, call_id: str, route: str
) -> CreditGate | QuotaGate | None:
    """The gate a call of this plan goes through: credits reserved, a quota slot taken, or none."""
    if meter is None or plan is None:
        return None
    if plan.credit_based:
        return CreditGate(meter.credits, owner, call_id, route, services.SETTINGS)
    if plan.quota is not None:
        return QuotaGate(meter.limits, owner, plan.quota)
    return None


@dataclass(frozen=True)
class CallOutcome:
    """What the metering needs to know of one answered call."""

    owner: str  # whose usage and balance: the key's account
    route: str
    call_id: str
    credit_based: bool
    charge_here: bool  # a billable result was delivered by this call
    by_task: bool = False  # a synchronous task delivered it (its state machine charged it)


def settle_call(
    meter: UsageMeter, gate: CreditGate | QuotaGate | None, call: CallOutcome, plan: Plan | None = None
) -> Usage:
    """The money side of an answered call: its reservation committed with its count (one
    transaction) or released (a quota slot kept or given back), the call counted, and what the
    answer says it cost. The metering middleware runs this for every call; benchmarks/bench_money.py
    runs it under load."""
    from alphacut.aws.ledger.limits import utc_day
    from alphacut.aws.ledger.usage import MeteredCall

    credit_gate = gate if isinstance(gate, CreditGate) else None
    hold_finished = (
        credit_gate.finished() if credit_gate is not None else False
    )  # the hold exists before settling
    paid, hold = (
        (credit_gate.amount, credit_gate.hold) if credit_gate is not None and call.charge_here else (0, "")
    )
    if gate is not None and not call.charge_here:
        gate.release()
    meter.count(
        MeteredCall(
            call.owner,
            call.route,
            call.charge_here,
            call.call_id,
            # a quota call counts on the day of its slot, even when it ends after 00:00 UTC
            day=gate.day if isinstance(gate, QuotaGate) and gate.day else utc_day(meter.clock()),
            credits=paid,
            hold=hold,
            hold_finished=hold_finished,
        )
    )
    if paid:
        metrics.add_metric(name="CreditsCharged", unit=MetricUnit.Count, value=credits(paid))
    charged = call.charge_here or call.by_task
    if call.credit_based:
        task_paid = credit_gate.task_amount if credit_gate is not None and call.by_task else 0
        # a delivered call's commit leaves the balance as its reservation left it: no read
        left = credit_gate.left if credit_gate is not None and paid and not task_paid else None
        balance = left if left is not None else meter.credits.balance(call.owner)
        if credit_gate is not None and paid:  # only a charged call crosses the threshold
            _tell_if_low(credit_gate, balance)
        return Usage(charged, credits(paid + task_paid), credits(balance or 0))
    quota = plan.quota if plan is not None else None
    if quota is None:
        return Usage(charged)
    left = gate.left if isinstance(gate, QuotaGate) else None
    return Usage(charged, None, left if left is not None else quota_left(meter, call.owner, quota), quota)


def _tell_if_low(gate: CreditGate, balance: int | None) -> None:
    """A call that took the balance below the store's threshold queues the news once per crossing
    (its store is told and, with auto top-up on, the pack bought, off this path). A failure to
    queue it is logged, never the call's, and gives the crossing back: the threshold is armed
    again, so the next charged call tells it, rather than no notice and no top-up until the store
    buys by hand."""
    queue = services.low_balance_queue()
    if queue is None or gate.standing is None:
        return
    crossing = None
    try:
        crossing = gate.crossing(balance)
        if crossing is None or balance is None:
            return
        from alphacut.aws.billing.low_balance_queue import LowBalance

        queue.send(LowBalance(gate.key_id, crossing, balance, gate.standing.low_at, time.time()))
    except Exception:  # noqa: BLE001 - SQS refusing, or not reached (botocore's connection errors too)
        logger.warning("a low balance could not be queued", extra={"key_id": gate.key_id})
        metrics.add_metric(name="LowBalanceNotQueued", unit=MetricUnit.Count, value=1)
        if crossing is not None:
            try:
                gate.ledger.unclaim_low_balance(gate.key_id, crossing)
            except ClientError:
                logger.warning("a low balance crossing stays claimed", extra={"key_id": gate.key_id})


def quota_left(meter: UsageMeter, owner: str, quota: int) -> int | None:
    """A quota key's results left today (None: the table could not be read)."""
    try:
        return max(quota - meter.limits.taken(owner), 0)
    except ClientError:
        return None


def spendable(meter: UsageMeter, caller: Caller) -> tuple[int | float, int]:
    """What a key may still spend, as (credits, results today): a credit key's account balance,
    within what is left of its own daily limit; a quota plan's results left today (the account's);
    a test key's test results left today (never credits)."""
    account = caller.account_id
    if caller.test:
        taken = meter.limits.taken(test_payer(account))
        return 0, max(services.SETTINGS.test_results_per_day - taken, 0)
    plan = caller.plan
    if plan is not None and plan.credit_based:
        balance = meter.credits.balance(account) or 0
        if caller.daily_limit is not None:
            spent = meter.key_spend.today([caller.key_id]).get(caller.key_id, 0)
            balance = min(balance, max(caller.daily_limit - spent, 0))
        return credits(balance), 0
    if plan is not None and plan.quota is not None:
        return 0, max(plan.quota - meter.limits.taken(account), 0)
    return 0, 0
