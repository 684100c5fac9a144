"""The local gateway applies an API Gateway key's usage plan, the service's own ``Plan`` type, as
API Gateway does: its throttle (or the account's where it has none) and its daily quota; and the
account's limits on making such keys."""

from __future__ import annotations

import pytest
from alphacut.aws.ledger.plans import Plan
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


def test_create_api_key_is_held_to_five_a_second_and_ten_thousand_keys_an_account(monkeypatch):
    import boto3
    from alphacut_dev.local.aws_rules import MAX_API_KEYS, AwsRules
    from botocore.config import Config
    from botocore.exceptions import ClientError
    from moto import mock_aws
    from moto.apigateway.models import apigateway_backends

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    now = [1_900_000_000.0]
    rules = AwsRules(clock=lambda: now[0])  # the clock its buckets read: still, then moved
    with mock_aws():
        rules.apply()
        try:
            gateway = boto3.client(  # no SDK retries: each refusal seen
                "apigateway",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(retries={"max_attempts": 1, "mode": "standard"}),
            )
            codes = []
            for i in range(8):  # within one instant: 5 a second
                try:
                    gateway.create_api_key(name=f"k{i}")
                    codes.append("ok")
                except ClientError as error:
                    codes.append(error.response["Error"]["Code"])
            assert codes == ["ok"] * 5 + ["TooManyRequestsException"] * 3
            now[0] += 0.2  # a fifth of a second: one more
            gateway.create_api_key(name="after-a-fifth-of-a-second")
            backend = apigateway_backends["123456789012"]["us-east-1"]
            some = next(iter(backend.keys.values()))
            backend.keys.update({f"filler{i}": some for i in range(MAX_API_KEYS - len(backend.keys))})
            now[0] += 1
            with pytest.raises(ClientError) as full:
                gateway.create_api_key(name="the-10001st")
            assert full.value.response["Error"]["Code"] == "LimitExceededException"
        finally:
            rules.restore()


def test_the_keyless_routes_stage_throttle_refuses_past_its_burst_for_all_callers_together():
    from alphacut.api.app import KEYLESS_METHODS
    from alphacut_dev.local.gateway import MethodThrottles
    from alphacut_dev.template import translate_template

    resources = translate_template()["Resources"]
    stage = next(r for r in resources.values() if r["Type"] == "AWS::ApiGateway::Stage"
                 and r["Properties"]["RestApiId"] == {"Ref": "Api"})  # fmt: skip
    settings = stage["Properties"]["MethodSettings"]
    limits = {"KeylessRateLimit": 2, "KeylessBurstLimit": 3}
    resolved = [
        {k: limits.get(v.get("Ref"), v) if isinstance(v, dict) else v for k, v in s.items()} for s in settings
    ]
    throttles = MethodThrottles(clock=lambda: NOON)
    throttles.add_stage("Api", resolved)
    for route, method in KEYLESS_METHODS:
        assert [throttles.wait("Api", method, route) for _ in range(3)] == [0, 0, 0], route
        assert throttles.wait("Api", method, route) > 0, route  # the fourth in the same instant
    assert throttles.wait("Api", "POST", "/v1/cutout") == 0  # keyed routes: their keys' limits
