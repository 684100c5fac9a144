"""One deadline per call: every wait inside it (an image URL, a background URL, the model
endpoint) gets what is left of it, never a budget of its own that could add up past it.

A sync call's deadline is API Gateway's integration timeout (29 s, counted from when the gateway
received the request) less a margin for the answer to go out: past it the gateway has already
answered 504, so nothing may be charged. The Segment step's is its function's timeout less a
margin, so a slow download ends as a download failure, not as the step's time-out.

Usage::

    with deadline(time.time() + 27):
        timeout = budget(10.0)     # min(10, seconds left); DeadlineExceeded when none is left
        passed()                   # True once the deadline is behind us
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from alphacut.errors import DeadlineExceeded

GATEWAY_TIMEOUT_SECONDS = 29.0  # API Gateway's integration timeout (REST APIs)
ANSWER_MARGIN_SECONDS = 2.0  # the answer must still reach the gateway

_deadline: ContextVar[float | None] = ContextVar("alphacut_deadline", default=None)


@contextmanager
def deadline(at: float) -> Iterator[None]:
    """Run the block under the deadline ``at`` (unix seconds); an earlier one in force stays."""
    current = _deadline.get()
    token = _deadline.set(at if current is None else min(at, current))
    try:
        yield
    finally:
        _deadline.reset(token)


def seconds_left() -> float | None:
    """Seconds to the deadline in force (None: no deadline)."""
    at = _deadline.get()
    return None if at is None else at - time.time()


def budget(limit: float) -> float:
    """What a wait may take: ``limit``, or less where the deadline is nearer; ``DeadlineExceeded``
    when nothing is left."""
    left = seconds_left()
    if left is None:
        return limit
    if left <= 0:
        raise DeadlineExceeded("the call ran out of time before it could finish")
    return min(limit, left)


def passed() -> bool:
    left = seconds_left()
    return left is not None and left <= 0


def sync_call_deadline(request_epoch_ms: int | None, now: float | None = None) -> float:
    """A sync call's deadline: the gateway's timeout from when it received the request (its
    ``requestTimeEpoch``; else now), less the answer's margin."""
    start = request_epoch_ms / 1000 if request_epoch_ms else (time.time() if now is None else now)
    return start + GATEWAY_TIMEOUT_SECONDS - ANSWER_MARGIN_SECONDS
