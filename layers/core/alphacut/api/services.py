"""What every route shares in one process: the settings, the pipeline, the AWS adapters (created
at first use, once), and who is calling.

Usage::

    engine = services.pipeline()
    owner = services.api_key_owner(event)      # the key id the key authorizer let in
    account = services.account_of(event)       # the account it spends from (balance, payments)
    services.caller(event).plan                # and its plan, from the authorizer's context
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from alphacut.aws.keys.authorizer import Caller
from alphacut.settings import ServiceSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from alphacut.api.paid_pipeline import PaidPipeline
    from alphacut.aws.billing.low_balance_queue import LowBalanceQueue
    from alphacut.aws.kept_mattes import KeptMattes
    from alphacut.aws.ledger.idempotency import IdempotencyStore
    from alphacut.aws.ledger.usage import UsageMeter
    from alphacut.aws.tasks.results import ResultStore
    from alphacut.aws.tasks.service import TaskService
    from alphacut.result_links import LinkSigner

SETTINGS = ServiceSettings.from_env()

_state: dict[str, object] = {}
_lock = threading.Lock()


def once[T](name: str, factory: Callable[[], T]) -> T:
    """One instance per process of what ``factory`` makes, created at first use (thread-safe)."""
    with _lock:
        if name not in _state:
            _state[name] = factory()
        return cast(T, _state[name])


def configure(settings: ServiceSettings) -> None:
    """Use ``settings`` from now on (tests that point a process at their own AWS): the adapters
    made so far are dropped and made again from them at first use."""
    global SETTINGS
    SETTINGS = settings
    forget_connections()


def forget_connections() -> None:
    """Drop every AWS client and adapter made so far (they are made again at first use); the
    pipeline stays. For SnapStart: a restored snapshot must not reuse the snapshot's sockets."""
    from alphacut.aws import clients

    with _lock:
        for name in [n for n in _state if n != "pipeline"]:
            del _state[name]
    clients.client.cache_clear()


def pipeline() -> PaidPipeline:
    """The process's pipeline (numpy, Pillow and onnxruntime are imported here, at first use);
    a credit-based call's price is reserved before its model runs (``alphacut.api.credits``)."""
    from alphacut.api.paid_pipeline import PaidPipeline

    made: PaidPipeline = once("pipeline", PaidPipeline.from_settings)
    return made


def link_signer() -> LinkSigner | None:
    """The result-link signer (the stack's secret), or None where none is configured."""

    def make() -> LinkSigner | None:
        from alphacut.aws.secrets import secret_bytes
        from alphacut.result_links import LinkSigner

        return (
            LinkSigner(secret_bytes(SETTINGS.result_link_secret_arn))
            if SETTINGS.result_link_secret_arn
            else None
        )

    return once("link-signer", make)


def public_base_url(event: dict[str, Any] | None) -> str:
    """The API's own base URL as the caller reached it, or "" outside a request. The deployment's
    ``PUBLIC_BASE_URL`` when set; else the host and base path API Gateway gives: the stage on its
    own domain (``/prod``), the base path mapping on a custom domain (none, or ``/v2``), found as
    what the request's full path holds before the route's path."""
    if SETTINGS.public_base_url:
        return SETTINGS.public_base_url.rstrip("/")
    context = (event or {}).get("requestContext") or {}
    host = context.get("domainName") or ""
    if not host:
        return ""
    headers = {k.lower(): v for k, v in ((event or {}).get("headers") or {}).items()}
    scheme = headers.get("x-forwarded-proto") or "https"  # API Gateway serves HTTPS only
    full_path, route_path = context.get("path") or "", (event or {}).get("path") or ""
    if route_path and full_path.endswith(route_path):
        base = full_path[: len(full_path) - len(route_path)]
    else:
        base = f"/{context['stage']}" if context.get("stage") else ""
    return f"{scheme}://{host}{base.rstrip('/')}"


def result_store(ttl_seconds: int | None = None, event: dict[str, Any] | None = None) -> ResultStore:
    """Where results go and how they are linked (``ttl_seconds``: a route's own lifetime, e.g.
    AILabTools' 24 hours; ``event``: the request, whose API base the links point back to)."""
    from alphacut.aws.tasks.results import ResultStore  # boto3 only when a URL is asked for

    return ResultStore(
        SETTINGS.results_bucket,
        ttl_seconds or SETTINGS.result_url_ttl,
        public_base_url(event),
        link_signer() if event else None,
    )


def kept_mattes() -> KeptMattes | None:
    """Where results are kept for a touch-up (``alphacut.touchup``), or None where no results
    bucket is configured (then answers carry no ``result_id``)."""
    from alphacut.aws.kept_mattes import KeptMattes  # boto3 only where a result is kept

    bucket = SETTINGS.results_bucket
    return once("kept-mattes", lambda: KeptMattes(bucket)) if bucket else None


def task_service() -> TaskService:
    from alphacut.aws.tasks.service import TaskService  # boto3 only in the functions that use tasks

    return once("tasks", lambda: TaskService.from_settings(SETTINGS))


def usage_meter() -> UsageMeter | None:
    """The metering table's adapter, or None where no table is configured (metering off)."""
    from alphacut.aws.ledger.usage import UsageMeter

    return once("meter", lambda: UsageMeter.from_settings(SETTINGS))


def low_balance_queue() -> LowBalanceQueue | None:
    """Where a balance that crossed its threshold is queued (None: no queue, the CLI and tests)."""
    from alphacut.aws.billing.low_balance_queue import LowBalanceQueue

    url = SETTINGS.low_balance_queue_url
    return once("low_balance", lambda: LowBalanceQueue(url)) if url else None


def idempotency_store() -> IdempotencyStore | None:
    """Idempotency records, or None where no table is configured."""
    from alphacut.aws.ledger.idempotency import IdempotencyStore

    return once("idempotency", lambda: IdempotencyStore.from_settings(SETTINGS))


def request_id(event: dict[str, Any], lambda_context: LambdaContext | None = None) -> str:
    context = event.get("requestContext") or {}
    if context.get("requestId"):
        return str(context["requestId"])
    return str(getattr(lambda_context, "aws_request_id", "local"))


def seconds_left(lambda_context: LambdaContext | None) -> Callable[[], float]:
    """A function that says how long this call has left: the nearer of the invocation's own end
    (the Lambda context knows) and the call's deadline (``alphacut.deadlines``)."""
    from alphacut import deadlines

    def left() -> float:
        found = [deadlines.seconds_left()]
        if lambda_context is not None and hasattr(lambda_context, "get_remaining_time_in_millis"):
            found.append(lambda_context.get_remaining_time_in_millis() / 1000)
        known = [value for value in found if value is not None]
        return min(known) if known else deadlines.GATEWAY_TIMEOUT_SECONDS

    return left


def caller(event: dict[str, Any]) -> Caller | None:
    """Who the key authorizer let in: key id, customer, plan (None: a keyless route)."""
    return Caller.from_event(event)


def api_key_owner(event: dict[str, Any]) -> str:
    """The public id of the caller's key. Never the key's value: that is a secret, not an
    identity, and it would be written into the usage table."""
    known = Caller.from_event(event)
    return known.key_id if known is not None else "anonymous"


def account_of(event: dict[str, Any]) -> str:
    """The account the caller's key spends from: whose balance, payments and statements a call
    reads or changes (a key made before accounts is its own account's)."""
    known = Caller.from_event(event)
    return known.account_id if known is not None else "anonymous"


def key_required(event: dict[str, Any], keyless: frozenset[str]) -> bool:
    """Whether the route asked API Gateway for a key (``keyless``: the routes that do not): only
    such calls are metered or kept for idempotency."""
    return (event.get("resource") or event.get("path") or "") not in keyless
