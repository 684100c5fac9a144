"""What every route shares in one process: the settings, the pipeline, the AWS adapters (created
at first use, once), and who is calling.

Usage::

    engine = runtime.pipeline()
    owner = runtime.api_key_owner(event)       # the API key id API Gateway resolved
"""

from __future__ import annotations

import threading

from alphacut.api.settings import ServiceSettings
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


def pipeline() -> Pipeline:
    return once("pipeline", Pipeline.from_settings)


def result_store(ttl_seconds: int | None = None):
    """Signed result URLs (``ttl_seconds``: a route's own lifetime, e.g. seed 004's 24 hours)."""
    from alphacut.aws.results import ResultStore  # boto3 only when a URL is asked for

    ttl = ttl_seconds or SETTINGS.result_url_ttl
    return once(f"store-{ttl}", lambda: ResultStore(SETTINGS.results_bucket, ttl))


def task_service():
    from alphacut.aws.task_service import TaskService  # boto3 only in the functions that use tasks

    return once("tasks", TaskService.from_env)


def usage_meter():
    """The metering table's adapter, or None where no table is configured (metering off)."""
    from alphacut.aws.usage import UsageMeter

    return once("meter", UsageMeter.from_env)


def idempotency_store():
    """Idempotency records, or None where no table is configured."""
    from alphacut.aws.idempotency import IdempotencyStore

    return once("idempotency", IdempotencyStore.from_env)


def request_id(event: dict, lambda_context=None) -> str:
    context = event.get("requestContext") or {}
    if context.get("requestId"):
        return context["requestId"]
    return getattr(lambda_context, "aws_request_id", "local")


# Where no Lambda context says it (in-process calls): API Gateway's 29 s
DEFAULT_INVOCATION_SECONDS = 29.0


def seconds_left(lambda_context, started: float | None = None):
    """A function that says how long this invocation has left (the Lambda context knows)."""
    if lambda_context is not None and hasattr(lambda_context, "get_remaining_time_in_millis"):
        return lambda: lambda_context.get_remaining_time_in_millis() / 1000
    import time

    deadline = (started or time.monotonic()) + DEFAULT_INVOCATION_SECONDS
    return lambda: deadline - time.monotonic()


def api_key_owner(event: dict) -> str:
    identity = (event.get("requestContext") or {}).get("identity") or {}
    return identity.get("apiKeyId") or identity.get("apiKey") or "anonymous"
