"""What every route shares in one process: the settings, the pipeline, the AWS adapters (created
at first use, once), and who is calling.

Usage::

    engine = process.pipeline()
    owner = process.api_key_owner(event)       # the API key id API Gateway resolved
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from alphacut.settings import ServiceSettings

if TYPE_CHECKING:
    from alphacut.pipeline import Pipeline

SETTINGS = ServiceSettings.from_env()

_state: dict[str, object] = {}
_lock = threading.Lock()


def once(name: str, factory):
    """One instance per process of what ``factory`` makes, created at first use (thread-safe)."""
    with _lock:
        if name not in _state:
            _state[name] = factory()
        return _state[name]


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


def pipeline() -> Pipeline:
    """The process's pipeline (numpy, Pillow and onnxruntime are imported here, at first use)."""
    from alphacut.pipeline import Pipeline

    return once("pipeline", Pipeline.from_settings)


def link_signer():
    """The result-link signer (the stack's secret), or None where none is configured."""

    def make():
        from alphacut.aws.secrets import secret_bytes
        from alphacut.result_links import LinkSigner

        return (
            LinkSigner(secret_bytes(SETTINGS.result_link_secret_arn))
            if SETTINGS.result_link_secret_arn
            else None
        )

    return once("link-signer", make)


def public_base_url(event: dict | None) -> str:
    """The API's own base URL as the caller reached it (scheme, host, stage), or "" outside a request."""
    context = (event or {}).get("requestContext") or {}
    host = context.get("domainName") or ""
    if not host:
        return ""
    headers = {k.lower(): v for k, v in ((event or {}).get("headers") or {}).items()}
    scheme = headers.get("x-forwarded-proto") or ("https" if "amazonaws.com" in host else "http")
    stage = context.get("stage") or ""
    return f"{scheme}://{host}" + (f"/{stage}" if stage else "")


def result_store(ttl_seconds: int | None = None, event: dict | None = None):
    """Where results go and how they are linked (``ttl_seconds``: a route's own lifetime, e.g.
    AILabTools' 24 hours; ``event``: the request, whose API base the links point back to)."""
    from alphacut.aws.results import ResultStore  # boto3 only when a URL is asked for

    return ResultStore(
        SETTINGS.results_bucket,
        ttl_seconds or SETTINGS.result_url_ttl,
        public_base_url(event),
        link_signer() if event else None,
    )


def task_service():
    from alphacut.aws.task_service import TaskService  # boto3 only in the functions that use tasks

    return once("tasks", lambda: TaskService.from_settings(SETTINGS))


def usage_meter():
    """The metering table's adapter, or None where no table is configured (metering off)."""
    from alphacut.aws.usage import UsageMeter

    return once("meter", lambda: UsageMeter.from_settings(SETTINGS))


def idempotency_store():
    """Idempotency records, or None where no table is configured."""
    from alphacut.aws.idempotency import IdempotencyStore

    return once("idempotency", lambda: IdempotencyStore.from_settings(SETTINGS))


def request_id(event: dict, lambda_context=None) -> str:
    context = event.get("requestContext") or {}
    if context.get("requestId"):
        return context["requestId"]
    return getattr(lambda_context, "aws_request_id", "local")


# Where no Lambda context says it (in-process calls): API Gateway's 29 s
DEFAULT_INVOCATION_SECONDS = 29.0


def seconds_left(lambda_context):
    """A function that says how long this invocation has left (the Lambda context knows)."""
    if lambda_context is not None and hasattr(lambda_context, "get_remaining_time_in_millis"):
        return lambda: lambda_context.get_remaining_time_in_millis() / 1000
    import time

    deadline = time.monotonic() + DEFAULT_INVOCATION_SECONDS
    return lambda: deadline - time.monotonic()


def api_key_owner(event: dict) -> str:
    identity = (event.get("requestContext") or {}).get("identity") or {}
    return identity.get("apiKeyId") or identity.get("apiKey") or "anonymous"
