"""The keys a store manages itself (scope ``keys``): make one (its value shown once), list them,
rotate one with a grace, revoke one, read or rotate its callback secret. The rules (what one key
may do to others, the account's limits) are ``alphacut.aws.keys.accounts``; these handlers read the
request and answer.

Usage (alphacut.api.app)::

    app.include_router(keys.router)     # /v1/keys*
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from alphacut.api import services
from alphacut.api.openapi import JSON, RouteDoc
from alphacut.api.request import parse_json_object, raw_body
from alphacut.api.responses import json_response
from alphacut.errors import InsufficientScope, InvalidOption, NotFound
from alphacut.options import parse_bool
from alphacut.pricing import credits, millicredits
from alphacut.scopes import KEYS, checked_scopes

if TYPE_CHECKING:
    from alphacut.aws.callbacks.secrets import CallbackSecrets
    from alphacut.aws.keys.accounts import AccountKeys
    from alphacut.aws.keys.authorizer import Caller
    from alphacut.aws.keys.store import StoredKey

router = Router()
MAX_DAILY_CREDITS = 10_000_000
MAX_GRACE_SECONDS = 30 * 86400  # a rotated value or callback secret kept at most 30 days
KEY_VIEW: dict[str, Any] = {
    "type": "object",
    "properties": {
        "key_id": {"type": "string"},
        "name": {"type": "string"},
        "scopes": {
            "type": "array",
            "items": {"type": "string", "enum": ["images", "usage", "billing", "keys"]},
        },
        "test": {"type": "boolean"},
        "daily_credit_limit": {"type": ["number", "null"]},
        "status": {"type": "string"},
        "created": {"type": "string"},
        "last_used": {"type": ["string", "null"]},
        "credits_today": {"type": "number"},
    },
}
MADE = {JSON: {**KEY_VIEW, "properties": {**KEY_VIEW["properties"], "key": {"type": "string"}}}}
SECRET_VIEW = {
    JSON: {
        "type": "object",
        "properties": {"key_id": {"type": "string"}, "callback_secret": {"type": "string"}},
    }
}
GRACE = {"grace_seconds": {"type": "integer", "minimum": 0, "maximum": 30 * 86400}}

ROUTES = [
    RouteDoc(
        "/v1/keys",
        "post",
        "Make a key of this account (its value shown once)",
        "name; scopes (any of images, usage, billing, keys; at most this key's own); test: a test key "
        "(never charged, results watermarked, a few a day); daily_credit_limit: credits a UTC day it may "
        "spend from the account's balance (a key with a limit cannot hold scope keys).",
        body={
            JSON: {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 64},
                    "scopes": {**KEY_VIEW["properties"]["scopes"], "minItems": 1},
                    "test": {"type": "boolean"},
                    "daily_credit_limit": {"type": ["number", "null"], "minimum": 0},
                },
            }
        },
        answer=MADE,
        answer_status=201,
        extra_responses={
            403: "a scope, test flag or limit beyond this key's own",
            409: "the account's keys are at their limit",
        },
        scopes=(KEYS,),
    ),
    RouteDoc(
        "/v1/keys",
        "get",
        "This account's live keys and those revoked today: name, scopes, test, status, created, last used, "
        "credits today (a test key lists test keys only)",
        answer={JSON: {"type": "object", "properties": {"keys": {"type": "array", "items": KEY_VIEW}}}},
        scopes=(KEYS,),
    ),
    RouteDoc(
        "/v1/keys/{key_id}",
        "delete",
        "Revoke a key (refused by the API within KeyCacheSeconds; never the last key with scope keys)",
        answer={JSON: KEY_VIEW},
        extra_responses={404: "no live key of this account", 409: "the account's last key that manages keys"},
        scopes=(KEYS,),
    ),
    RouteDoc(
        "/v1/keys/{key_id}/rotate",
        "post",
        "A new value for a key; the old one works grace_seconds more (its value shown once)",
        body={JSON: {"type": "object", "properties": GRACE}},
        body_required=False,
        answer=MADE,
        extra_responses={404: "no live key of this account"},
        scopes=(KEYS,),
    ),
    RouteDoc(
        "/v1/keys/{key_id}/callback-secret",
        "get",
        "The secret this key's task callbacks are signed with (cbk_...)",
        answer=SECRET_VIEW,
        extra_responses={404: "no live key of this account"},
        scopes=(KEYS,),
    ),
    RouteDoc(
        "/v1/keys/{key_id}/callback-secret/rotate",
        "post",
        "A new callback secret for the key; the old one signs grace_seconds more",
        body={JSON: {"type": "object", "properties": GRACE}},
        body_required=False,
        answer=SECRET_VIEW,
        extra_responses={404: "no live key of this account"},
        scopes=(KEYS,),
    ),
]
PATHS = frozenset(route.path for route in ROUTES)


def account_keys() -> AccountKeys:
    def made() -> AccountKeys:
        from alphacut.aws.keys.accounts import AccountKeys
        from alphacut.aws.keys.store import KeyStore
        from alphacut.aws.secrets import secret_bytes

        settings = services.SETTINGS
        store = KeyStore(
            settings.require("usage_table"), secret_bytes(settings.require("key_hash_secret_arn"))
        )
        return AccountKeys(store, settings.keys_per_account, settings.test_keys_per_account)

    return services.once("account_keys", made)


def callback_secrets() -> CallbackSecrets:
    def made() -> CallbackSecrets:
        from alphacut.aws.callbacks.secrets import CallbackSecrets

        return CallbackSecrets.from_settings(services.SETTINGS)

    return services.once("callback_secrets", made)


def _actor() -> Caller:
    caller = services.caller(router.current_event.raw_event)
    if caller is None:
        raise NotFound("the keys routes need an API key", field="x-api-key")
    if caller.daily_limit is not None:  # one made before the rule: its keys would spend beside its limit
        raise InsufficientScope(
            "a key with a daily limit manages no keys (the keys it made would spend beside its limit)",
            scope=KEYS,
        )
    return caller


def _body() -> dict[str, Any]:
    return parse_json_object(raw_body(router.current_event.raw_event))


def grace_seconds(body: dict[str, Any], default: int) -> int:
    grace = body.get("grace_seconds")
    if grace is None:  # not given (the document's null)
        return default
    if isinstance(grace, bool) or not isinstance(grace, int) or not 0 <= grace <= MAX_GRACE_SECONDS:
        raise InvalidOption(
            f"must be a whole number of seconds from 0 to {MAX_GRACE_SECONDS}",
            field="grace_seconds",
            limit=MAX_GRACE_SECONDS,
        )
    return grace


def key_view(key: StoredKey, spent: int = 0) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "name": key.name or ("owner" if key.key_id == key.account_id else ""),
        "scopes": list(key.scopes),
        "test": key.test,
        "daily_credit_limit": credits(key.daily_limit) if key.daily_limit is not None else None,
        "status": key.status,
        "created": key.created,
        "last_used": key.last_used or None,
        "credits_today": credits(spent),
    }


def _daily_limit(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_DAILY_CREDITS:
        raise InvalidOption(
            f"must be a number of credits from 0 to {MAX_DAILY_CREDITS}, or null",
            field="daily_credit_limit",
            limit=MAX_DAILY_CREDITS,
        )
    try:
        return millicredits(value)
    except ValueError as error:
        raise InvalidOption(str(error), field="daily_credit_limit") from None


@router.post("/v1/keys")
def create_key_route() -> Response[Any]:
    from alphacut.aws.keys.accounts import KeyRequest

    body, actor = _body(), _actor()
    name = body.get("name")
    if isinstance(name, int | float) and not isinstance(name, bool):
        name = str(name)  # a number is read as its text, as every free-text member
    if not isinstance(name, str):
        raise InvalidOption("must name the key (1 to 64 characters)", field="name")
    # null is "not given", and a yes/no takes the words forms send (the document's reading)
    test = parse_bool(body["test"], "test") if body.get("test") is not None else False
    scopes = checked_scopes(body["scopes"]) if body.get("scopes") is not None else actor.scopes
    request = KeyRequest(name, scopes, test, _daily_limit(body.get("daily_credit_limit")))
    made = account_keys().create(actor, request)
    return json_response(201, {**key_view(made.key), "key": made.value})


@router.get("/v1/keys")
def list_keys_route() -> Response[Any]:
    actor, meter = _actor(), services.usage_meter()
    account_keys().refuse_dead(actor, "it reads no keys")
    now = int(meter.clock() if meter is not None else time.time())
    # the keys revoked today too (00:00 UTC on): what they spent today stays in view
    keys = account_keys().list(actor.account_id, revoked_since=now - now % 86400)
    if actor.test:  # a test key sees test keys only: nothing of the account's live keys or spending
        keys = [key for key in keys if key.test]
    spent = meter.key_spend.today([key.key_id for key in keys]) if meter is not None else {}
    return json_response(200, {"keys": [key_view(key, spent.get(key.key_id, 0)) for key in keys]})


@router.delete("/v1/keys/<key_id>")
def revoke_key_route(key_id: str) -> Response[Any]:
    return json_response(200, key_view(account_keys().revoke(_actor(), key_id)))


@router.post("/v1/keys/<key_id>/rotate")
def rotate_key_route(key_id: str) -> Response[Any]:
    made = account_keys().rotate(_actor(), key_id, grace_seconds(_body(), 0))
    return json_response(200, {**key_view(made.key), "key": made.value})


@router.get("/v1/keys/<key_id>/callback-secret")
def callback_secret_route(key_id: str) -> Response[Any]:
    account_keys().managed(_actor(), key_id)
    return json_response(200, {"key_id": key_id, "callback_secret": callback_secrets().secret(key_id)})


@router.post("/v1/keys/<key_id>/callback-secret/rotate")
def rotate_callback_secret_route(key_id: str) -> Response[Any]:
    account_keys().managed(_actor(), key_id)
    secret = callback_secrets().rotate(key_id, grace_seconds(_body(), 86400))
    return json_response(200, {"key_id": key_id, "callback_secret": secret})
