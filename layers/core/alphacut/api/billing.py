"""The billing routes: a store buys credits, saves a card, sets its low-balance threshold and
automatic top-up, reads its payments; Stripe's webhook; sign-up by email. The logic is
``alphacut.billing``; these handlers read the request and answer.

Usage (alphacut.api.app)::

    app.include_router(billing.router)     # /v1/billing/*, /v1/signup*
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from alphacut.api import services
from alphacut.api.openapi import JSON, RouteDoc
from alphacut.api.request import header, parse_json_object, raw_body
from alphacut.api.responses import json_response
from alphacut.errors import BillingUnavailable, InsufficientScope, InvalidOption
from alphacut.scopes import BILLING, USAGE

if TYPE_CHECKING:
    from alphacut.aws.callbacks.secrets import WebhookSecrets
    from alphacut.billing.notices import NoticeAddresses
    from alphacut.billing.purchases import Purchases
    from alphacut.billing.settings import BillingSettings
    from alphacut.billing.signup import Signups
    from alphacut.billing.stripe_events import StripeEvents

router = Router()
OBJECT = {JSON: {"type": "object"}}


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return {JSON: schema}


WEBHOOK_SECRET_VIEW = _object({"account": {"type": "string"}, "webhook_secret": {"type": "string"}})

ROUTES = [
    RouteDoc(
        "/v1/billing/config",
        "get",
        "What the page needs to take a card: Stripe's publishable key, prices, packs",
        answer=OBJECT,
        scopes=(),
    ),
    RouteDoc(
        "/v1/billing/credits",
        "post",
        "Buy credits by card",
        "credits (a whole number in the operator's range) or pack (one of the operator's packs); saved_card: "
        "true charges the saved card now. Answers a Stripe PaymentIntent for Stripe.js to confirm; the "
        "credits are added when Stripe's webhook says it succeeded, once.",
        body=_object(
            {
                "credits": {"type": "integer", "minimum": 1},
                "pack": {"type": "string"},
                "saved_card": {"type": "boolean"},
            }
        ),
        answer=_object(
            {
                "payment_intent": {"type": "string"},
                "client_secret": {"type": "string"},
                "amount": {"type": "integer"},
                "currency": {"type": "string"},
                "credits": {"type": "integer"},
                "status": {"type": "string"},
            },
            ("payment_intent", "client_secret", "amount", "currency", "credits"),
        ),
        extra_responses={402: "the saved card was declined", 503: "card payments are not set up"},
        scopes=(BILLING,),
    ),
    RouteDoc(
        "/v1/billing/card",
        "post",
        "Save a card for automatic top-ups",
        "Without setup_intent: a Stripe SetupIntent for Stripe.js to confirm with the card. With the id of "
        "one that succeeded: its card is saved for this key.",
        body=_object({"setup_intent": {"type": "string", "pattern": "^seti_[A-Za-z0-9_]{1,250}$"}}),
        body_required=False,
        answer=OBJECT,
        extra_responses={503: "card payments are not set up"},
        scopes=(BILLING,),
    ),
    RouteDoc(
        "/v1/billing/settings",
        "get",
        "This key's balance, low-balance threshold and automatic top-up",
        answer=OBJECT,
        scopes=(BILLING,),
    ),
    RouteDoc(
        "/v1/billing/settings",
        "post",
        "Set the low-balance threshold, automatic top-up and where notices go",
        "low_balance: credits (0: no notice; below the top-up's pack); auto_top_up: a pack name or null; "
        "auto_top_up_monthly_cap: top-ups a calendar month (a raise applies next month); notify_url: where "
        "the signed balance.low webhook goes; email: where the notice is mailed, once the address confirms "
        "the link mailed to it. Fields left out stay as they are.",
        body=_object(
            {
                "low_balance": {"type": "integer", "minimum": 0},
                "auto_top_up": {"type": ["string", "null"]},
                "auto_top_up_monthly_cap": {"type": "integer", "minimum": 0, "maximum": 31},
                "notify_url": {"type": ["string", "null"]},
                "email": {"type": ["string", "null"]},
            }
        ),
        body_required=False,
        answer=OBJECT,
        scopes=(BILLING,),
    ),
    RouteDoc(
        "/v1/billing/payments",
        "get",
        "This key's card payments: amount, credits, state, receipt",
        answer=OBJECT,
        scopes=(BILLING,),
    ),
    RouteDoc(
        "/v1/billing/statement",
        "get",
        "This account's month statement, as CSV: calls, results, credits used and bought, card payments",
        "month: YYYY-MM (UTC; default this month). The same columns as the operator's "
        "`alphacut usage statement`, one line for the account and its total.",
        query={"month": {"type": "string", "pattern": "^(19|20)[0-9]{2}-(0[1-9]|1[0-2])$"}},
        answer={"text/csv": {"type": "string"}},
        scopes=(USAGE, BILLING),
    ),
    RouteDoc(
        "/v1/billing/webhook-secret",
        "get",
        "The secret this account's webhooks (balance.low) are signed with (cba_...)",
        "The account's, not one key's: any live key of the account with scope billing reads the same "
        "secret, whichever key was revoked (not scope keys alone: the secret signs money notices). "
        "alphacut.callbacks.verify checks a webhook with it.",
        answer=WEBHOOK_SECRET_VIEW,
        extra_responses={403: "a test key, a revoked or a suspended key"},
        scopes=(BILLING,),
    ),
    RouteDoc(
        "/v1/billing/webhook-secret/rotate",
        "post",
        "A new webhook secret for the account; the old one signs grace_seconds more",
        "grace_seconds: 0 to 2592000 (default 86400). From the first rotation on, the owner key's own "
        "signature no longer goes along (docs/security.md).",
        body=_object({"grace_seconds": {"type": "integer", "minimum": 0, "maximum": 30 * 86400}}),
        body_required=False,
        answer=WEBHOOK_SECRET_VIEW,
        extra_responses={403: "a test key, a revoked or a suspended key"},
        scopes=(BILLING,),
    ),
    RouteDoc(
        "/v1/billing/stripe",
        "post",
        "Stripe's webhook (no API key: the Stripe-Signature header is checked)",
        key_required=False,
        body=OBJECT,
        answer=OBJECT,
        extra_responses={400: "the signature does not match"},
    ),
    RouteDoc(
        "/v1/signup",
        "post",
        "Sign up: a one-time link to make a key goes to the email (no API key)",
        "The link points at the deployment's own address (PublicBaseUrl, else the API's own URL), never "
        "at the request's Host. Variants of one mailbox (case, fullwidth letters, gmail's dots, +tags at "
        "the providers that document them) count as one.",
        key_required=False,
        body=_object({"email": {"type": "string", "format": "email", "maxLength": 254}}, ("email",)),
        answer=OBJECT,
        answer_status=202,
        extra_responses={
            429: "too many sign-ups from this network address (field signup) or this mailbox (field email)",
            503: (
                "mail is not set up, or service_busy: Amazon SES's sending rate or daily quota is spent "
                "(nothing was counted; Retry-After)"
            ),
        },
    ),
    RouteDoc(
        "/v1/signup/confirm",
        "post",
        "Make the key a sign-up link is for (shown once; no API key)",
        key_required=False,
        body=_object(
            {
                "email": {"type": "string", "maxLength": 254},
                "token": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,128}$"},
            },
            ("email", "token"),
        ),
        answer=OBJECT,
        extra_responses={
            403: "the link is unknown, used or expired",
            409: "the mailbox has its keys already",
        },
    ),
    RouteDoc(
        "/v1/billing/notices/confirm",
        "post",
        "Confirm the address a key's notices are mailed to (the link mailed to it; no API key)",
        key_required=False,
        body=_object({"token": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,128}$"}}, ("token",)),
        answer=OBJECT,
        extra_responses={403: "the link is unknown, used or expired"},
    ),
]
PATHS = frozenset(route.path for route in ROUTES)


def billing_settings() -> BillingSettings:
    """Read afresh for each adapter made (``services.once`` makes each once a process; its lock
    is not re-entrant, so an adapter's factory never asks ``once`` for another)."""
    from alphacut.billing.settings import BillingSettings

    return BillingSettings.from_env()


def purchases() -> Purchases:
    def made() -> Purchases:
        from alphacut.aws.billing.payments import PaymentRecords
        from alphacut.aws.ledger.credits import CreditLedger
        from alphacut.billing.purchases import Purchases
        from alphacut.billing.stripe_account import StripeAccount

        table = services.SETTINGS.require("usage_table")
        settings = billing_settings()
        account, allowed = StripeAccount(settings), services.SETTINGS.url_allowed_hosts
        return Purchases(settings, account, PaymentRecords(table), CreditLedger(table), allowed)

    return services.once("purchases", made)


def notices() -> NoticeAddresses:
    def made() -> NoticeAddresses:
        from alphacut.aws.billing.mailbox import Mailbox
        from alphacut.aws.billing.payments import PaymentRecords
        from alphacut.billing.notices import NoticeAddresses

        settings = billing_settings()
        table = services.SETTINGS.require("usage_table")
        return NoticeAddresses(
            settings,
            PaymentRecords(table),
            Mailbox(settings.mail_from, settings.mail_dir, configuration_set=settings.mail_configuration_set),
        )

    return services.once("notices", made)


def stripe_events() -> StripeEvents:
    def made() -> StripeEvents:
        from alphacut.aws.billing.payments import PaymentRecords
        from alphacut.aws.keys.store import KeyStore
        from alphacut.aws.ledger.credits import CreditLedger
        from alphacut.aws.secrets import secret_bytes
        from alphacut.billing.stripe_account import StripeAccount
        from alphacut.billing.stripe_events import StripeEvents

        table = services.SETTINGS.require("usage_table")
        keys = KeyStore(table, secret_bytes(services.SETTINGS.require("key_hash_secret_arn")))
        return StripeEvents(
            StripeAccount(billing_settings()), PaymentRecords(table), CreditLedger(table), keys
        )

    return services.once("stripe_events", made)


def signups() -> Signups:
    def made() -> Signups:
        from alphacut.aws.billing.mailbox import Mailbox
        from alphacut.aws.keys.signups import SignupRecords
        from alphacut.aws.keys.store import KeyStore
        from alphacut.aws.ledger.credits import CreditLedger
        from alphacut.aws.ledger.plans import PlanCatalogue
        from alphacut.aws.secrets import secret_bytes
        from alphacut.billing.signup import Signups

        table = services.SETTINGS.require("usage_table")
        settings = billing_settings()
        keys = KeyStore(table, secret_bytes(services.SETTINGS.require("key_hash_secret_arn")))
        mailbox = Mailbox(
            settings.mail_from, settings.mail_dir, configuration_set=settings.mail_configuration_set
        )
        return Signups(
            settings, SignupRecords(table), keys, PlanCatalogue(table), CreditLedger(table), mailbox
        )

    return services.once("signups", made)


def webhook_secrets() -> WebhookSecrets:
    def made() -> WebhookSecrets:
        from alphacut.aws.callbacks.secrets import CallbackSecrets, WebhookSecrets

        return WebhookSecrets(CallbackSecrets.from_settings(services.SETTINGS))

    return services.once("webhook_secrets", made)


def _key_id() -> str:
    """Whose money a billing call reads or changes: the calling key's account (its balance,
    saved card, settings and payments are the account's, whichever of its keys calls), once the
    calling key is known to be live (one consistent read, as ``/v1/keys`` does): API Gateway lets a
    revoked key in until its cached answer ends, and a revoked key changes and reads no money."""
    from alphacut.api.keys import account_keys

    caller = services.caller(router.current_event.raw_event)
    if caller is not None:
        account_keys().refuse_dead(caller, "it changes and reads no money")
    return services.account_of(router.current_event.raw_event)


def _body() -> dict[str, Any]:
    return parse_json_object(raw_body(router.current_event.raw_event))


@router.get("/v1/billing/config")
def config_route() -> Response[Any]:
    return json_response(200, purchases().config())


@router.post("/v1/billing/credits")
def buy_route() -> Response[Any]:
    account = _key_id()
    caller = services.caller(router.current_event.raw_event)
    asked_by = caller.key_id if caller is not None else ""
    return json_response(200, purchases().buy(account, _body(), asked_by))


@router.post("/v1/billing/card")
def card_route() -> Response[Any]:
    return json_response(200, purchases().save_card(_key_id(), _body()))


@router.get("/v1/billing/settings")
def settings_route() -> Response[Any]:
    return json_response(200, purchases().view(_key_id()))


@router.post("/v1/billing/settings")
def change_settings_route() -> Response[Any]:
    """The settings; a new notice email is mailed a confirmation link and waits for it."""
    from alphacut.billing.signup import checked_email

    body, key_id = _body(), _key_id()
    asks_email = "email" in body
    email = body.pop("email", None)
    if email is not None and email != "":
        checked_email(email)  # said before anything else changes (null or "": no address)
        notices().refuse_if_spent(key_id, checked_email(email))
    view = purchases().configure(key_id, body)
    if asks_email:  # a link only for an address given (null or "" clears it: no link, no base URL)
        event = router.current_event.raw_event
        base = signup_base_url(event, billing_settings()) if email is not None and email != "" else ""
        view.update(notices().ask(key_id, email, base))
    return json_response(200, view)


@router.post("/v1/billing/notices/confirm")
def confirm_notices_route() -> Response[Any]:
    return json_response(200, notices().confirm(_body().get("token")))


@router.get("/v1/billing/payments")
def payments_route() -> Response[Any]:
    return json_response(200, purchases().payments(_key_id()))


@router.get("/v1/billing/statement")
def statement_route() -> Response[Any]:
    """The account's own statement: what the operator's statement says of it, and nothing of
    anyone else's (one query of its usage, its top-ups and its payments)."""
    import time

    from alphacut.aws.billing.payments import PaymentRecords
    from alphacut.aws.billing.statements import Statement
    from alphacut.aws.keys.admin import ApiKey

    event = router.current_event.raw_event
    _key_id()  # a live key
    caller, meter = services.caller(event), services.usage_meter()
    if caller is None or meter is None:
        raise BillingUnavailable("statements need the usage table")
    if caller.test:
        raise InsufficientScope("a test key reads no statement: its calls are never charged", scope=BILLING)
    month = (router.current_event.query_string_parameters or {}).get("month")
    if month is None:
        month = time.strftime("%Y-%m", time.gmtime())
    elif not MONTH.fullmatch(month):
        raise InvalidOption(f"must be a month as YYYY-MM, not {month!r}", field="month")
    account = ApiKey(caller.account_id, caller.customer, caller.plan.name if caller.plan else "", True)
    table = services.SETTINGS.require("usage_table")
    statement = Statement.build(
        month,
        [account],
        meter,
        services.SETTINGS.price_per_credit,
        billing_settings().currency,
        PaymentRecords(table),
    )
    return Response(
        status_code=200,
        content_type="text/csv; charset=utf-8",
        body=statement.to_csv(),
        headers={"Content-Disposition": f'attachment; filename="alphacut-statement-{statement.month}.csv"'},
    )


def _webhook_account() -> str:
    """The account whose webhook secret a live, non-test key of it reads or rotates."""
    account = _key_id()
    caller = services.caller(router.current_event.raw_event)
    if caller is not None and caller.test:
        raise InsufficientScope("a test key reads no webhook secret: it sees no money", scope=BILLING)
    return account


@router.get("/v1/billing/webhook-secret")
def webhook_secret_route() -> Response[Any]:
    account = _webhook_account()
    return json_response(200, {"account": account, "webhook_secret": webhook_secrets().secret(account)})


@router.post("/v1/billing/webhook-secret/rotate")
def rotate_webhook_secret_route() -> Response[Any]:
    from alphacut.api.keys import grace_seconds

    account = _webhook_account()
    secret = webhook_secrets().rotate(account, grace_seconds(_body(), 86400))
    return json_response(200, {"account": account, "webhook_secret": secret})


@router.post("/v1/billing/stripe")
def stripe_webhook_route() -> Response[Any]:
    event = router.current_event.raw_event
    done = stripe_events().receive(raw_body(event), header(event, "Stripe-Signature"))
    return json_response(200, {"received": True, "done": done})


MONTH = re.compile(r"(19|20)[0-9]{2}-(0[1-9]|1[0-2])")
API_ID = re.compile(r"^[a-z0-9]{1,32}$")
STAGE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


def signup_base_url(event: dict[str, Any], settings: BillingSettings) -> str:
    """Where a mailed sign-up link points: the deployment's ``PUBLIC_BASE_URL``; else the local
    stack's own address; else the API's own URL from what API Gateway sets and no client can
    (``requestContext.apiId`` and ``stage``, and the function's region). Never the Host header,
    ``requestContext.domainName`` or ``X-Forwarded-*``: a stranger asking for a victim's link
    would point it at their own server (result links, answered to the caller itself, still
    follow the request: ``services.public_base_url``)."""
    if settings.public_base_url or settings.local_base_url:
        return (settings.public_base_url or settings.local_base_url).rstrip("/")
    context = event.get("requestContext") or {}
    api_id, stage, region = str(context.get("apiId") or ""), str(context.get("stage") or ""), settings.region
    if not (API_ID.match(api_id) and STAGE.match(stage) and REGION.match(region)):
        raise BillingUnavailable(
            "sign-up links need the API's own address: the operator sets PublicBaseUrl (docs/api.md, Billing)"
        )
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{api_id}.execute-api.{region}.{suffix}/{stage}"


@router.post("/v1/signup")
def signup_route() -> Response[Any]:
    event = router.current_event.raw_event
    email, service = _body().get("email"), signups()
    source = ((event.get("requestContext") or {}).get("identity") or {}).get("sourceIp") or ""
    return json_response(202, service.ask(email, signup_base_url(event, service.settings), str(source)))


@router.post("/v1/signup/confirm")
def confirm_signup_route() -> Response[Any]:
    """The key a sign-up link is for. Its address is kept only as a hash (docs/security.md): the
    notice address is the store's own choice, confirmed by its own link."""
    body = _body()
    return json_response(200, signups().confirm(body.get("email"), body.get("token")))
