"""The local gateway applies a key's usage plan, the service's own ``Plan`` type, as API Gateway
does: its throttle (or the account's where it has none) and its daily quota."""

from __future__ import annotations

from alphacut.aws.plans import Plan
from alphacut_dev.local.gateway import ACCOUNT_BURST_LIMIT, ACCOUNT_RATE_LIMIT, UsageLimiter

NOON = 1_795_780_800.0  # 2026-11-27 12:00 UTC


def plan(item: dict) -> Plan:
    return Plan.from_gateway({"id": "p1", **item}, "p1")


def test_a_plan_without_a_throttle_gets_the_accounts_and_one_with_a_throttle_its_own():
    limiter = UsageLimiter(clock=lambda: NOON)
    assert limiter.check("open", plan({})) is None
    assert (limiter.buckets["open"].rate, limiter.buckets["open"].capacity) == (
        ACCOUNT_RATE_LIMIT,
        ACCOUNT_BURST_LIMIT,
    )
    tight = plan({"throttle": {"rateLimit": 1.0, "burstLimit": 2}})
    assert [limiter.check("tight", tight) for _ in range(2)] == [None, None]
    refused = limiter.check("tight", tight)
    assert refused is not None and refused.kind == "THROTTLED" and refused.retry_after >= 1


def test_the_daily_quota_refuses_the_call_past_it_until_the_next_utc_day():
    now = [NOON]
    limiter = UsageLimiter(clock=lambda: now[0])
    daily = plan(
        {"quota": {"limit": 2, "period": "DAY"}, "throttle": {"rateLimit": 100.0, "burstLimit": 100}}
    )
    assert [limiter.check("k", daily) for _ in range(2)] == [None, None]
    refused = limiter.check("k", daily)
    assert refused is not None and refused.kind == "QUOTA_EXCEEDED" and refused.quota == 2
    assert refused.reset == NOON + 12 * 3600 and refused.retry_after == 12 * 3600
    now[0] += 12 * 3600
    assert limiter.check("k", daily) is None
