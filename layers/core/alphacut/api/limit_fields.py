"""The IETF RateLimit fields on every keyed answer: what a client needs to pace itself.

draft-ietf-httpapi-ratelimit-headers: ``RateLimit-Policy`` lists the key's limits as a quota per
window: its plan's request rate (``"rate";q=2;w=1``; a rate under one a second as one call per
``w`` seconds) and its daily quota (``"day";q=500;w=86400``); ``RateLimit`` says what is left of a
window where the service knows it: the calls left today of a quota plan (``"day";r=12;t=3600``, ``t``
the seconds to 00:00 UTC), and of the rate (``"rate";r=4;t=1``: the calls that would pass at
once and the seconds until the whole burst is back, from the limiter's own write); a key with its
own daily limit of credits (``alphacut.aws.ledger.key_spend``) has ``"budget";q=<credits>;w=86400``
and, once a paid call counted on it, what is left (``"budget";r=<credits>;t=...``). They come from
the authorizer's context, the limiter's write and the call's own settling: no read.
``alphacut_client.pacing`` reads them.

Usage::

    response.headers.update(limit_fields(plan, usage.remain, time.time()))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from alphacut.aws.ledger.limits import next_utc_midnight
from alphacut.pricing import credits

if TYPE_CHECKING:
    from alphacut.aws.ledger.limits import RateLeft
    from alphacut.aws.ledger.plans import Plan


def rate_window(rate: float) -> tuple[int, int]:
    """A request rate as (quota, window seconds) in whole numbers: exact where a window of up to 10
    seconds makes it whole (2.5 a second: 5 in 2 s), else rounded down, never above the rate."""
    for window in range(1, 11):
        calls = rate * window
        if calls >= 1 and abs(calls - round(calls)) < 1e-9:
            return round(calls), window
    window = 1 if rate >= 1 else math.ceil(1 / rate)
    return max(1, math.floor(rate * window)), window


@dataclass(frozen=True)
class KeyBudgetLeft:
    """A key's own daily limit and what is left of it (millicredits; None: not known by this call)."""

    limit: int
    left: int | None = None


def limit_fields(
    plan: Plan | None,
    remain: float | None,
    now: float,
    budget: KeyBudgetLeft | None = None,
    test_quota: int | None = None,
    rate: RateLeft | None = None,
) -> dict[str, str]:
    """The fields for a call of ``plan``; ``remain``: what the call's settling says is left (a
    quota plan's calls today; a credit plan's balance is not a window and is not said here);
    ``budget``: the key's own daily limit of credits; ``test_quota``: a test key's day (its
    account's test results), in place of the plan's; ``rate``: what is left of the plan's rate, as
    the limiter's own write said it."""
    if plan is None:
        return {}
    policies, left = [], []
    to_midnight = max(0, next_utc_midnight(now) - int(now))
    if plan.rate_limit:
        quota, window = rate_window(plan.rate_limit)
        policies.append(f'"rate";q={quota};w={window}')
    day_quota = test_quota if test_quota is not None else plan.quota if not plan.credit_based else None
    if day_quota is not None:
        policies.append(f'"day";q={day_quota};w=86400')
        if remain is not None:
            left.append(f'"day";r={int(remain)};t={to_midnight}')
    if budget is not None:
        policies.append(f'"budget";q={_whole(credits(budget.limit))};w=86400')
        if budget.left is not None:
            left.append(f'"budget";r={_whole(credits(budget.left))};t={to_midnight}')
    if plan.rate_limit and rate is not None:
        left.append(f'"rate";r={rate.calls};t={rate.reset_seconds}')
    fields = {"RateLimit-Policy": ", ".join(policies)} if policies else {}
    if left:
        fields["RateLimit"] = ", ".join(left)
    return fields


def _whole(amount: float) -> int:
    """RateLimit's numbers are whole: credits left rounded down, never above what is left."""
    return math.floor(amount)
