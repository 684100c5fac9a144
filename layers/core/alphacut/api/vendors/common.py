"""What the vendor adapters share: the pipeline under a vendor's image limits, and one way to
turn any failure into the vendor's error envelope (counted, never charged)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from alphacut.api import services
from alphacut.api.metering import CHARGE_HERE
from alphacut.api.responses import ensure_deliverable, json_response
from alphacut.errors import AlphacutError, http_status
from alphacut.settings import ImageLimits

if TYPE_CHECKING:
    from alphacut.api.paid_pipeline import PaidPipeline

logger = Logger()


@cache
def pipeline_with(limits: ImageLimits) -> PaidPipeline:
    """The process's pipeline (same warm models) under a vendor's own image limits."""
    from alphacut.api.paid_pipeline import PaidPipeline

    return PaidPipeline(services.pipeline().models, limits)


def result_folder(request_id: str) -> str:
    """Where a request's stored results go: ``results/<UTC day>/<request id>`` (the bucket's
    lifecycle rule expires ``results/``)."""
    return f"results/{time.strftime('%Y-%m-%d', time.gmtime())}/{request_id}"


@dataclass(frozen=True)
class Envelope:
    """How a vendor's contract answers a failure: its body (``error_body(error, status, request
    id)``) and status (``status_for``, the one error table unless the vendor has its own)."""

    error_body: Callable[[Exception, int, str], dict[str, Any]]
    status_for: Callable[[Exception], int] = http_status

    def answer(self, error: Exception, request_id: str) -> Response[Any]:
        status = self.status_for(error)
        headers = {"X-Request-Id": request_id}
        if getattr(error, "retry_after", None):  # a 429 says when to come back, in any envelope
            headers["Retry-After"] = str(error.retry_after)  # type: ignore[attr-defined]
        return json_response(status, self.error_body(error, status, request_id), headers)


def vendor_answer(
    router: Router, build: Callable[[str], Response[Any]], envelope: Envelope, billable: bool = True
) -> Response[Any]:
    """Run ``build(request_id)``; a failure becomes the vendor's ``envelope``. ``billable``: a 200
    from ``build`` delivered a result."""
    router.append_context(exact_envelope=True)
    request_id = services.request_id(router.current_event.raw_event, router.lambda_context)
    try:
        response = ensure_deliverable(build(request_id))
    except Exception as error:  # every failure answers in the vendor's envelope
        if isinstance(error, AlphacutError):
            logger.info("request refused", extra={"error": error.to_dict()})
        else:
            logger.exception("unexpected error")
        return envelope.answer(error, request_id)
    if billable and response.status_code == 200:
        router.append_context(charge=CHARGE_HERE)
    return response


def error_message(error: Exception) -> str:
    if isinstance(error, AlphacutError):
        return str(error)
    return "internal error: quote the request id when reporting it"
