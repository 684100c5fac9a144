"""``alphacut deploy check`` and ``prune`` against AWS's recorded answers (botocore's Stubber,
with the shapes Lambda, Service Quotas and API Gateway answer in): a new account is told what it
lacks and what it refuses, an established one what it could use, and SnapStart versions no alias
points at are deleted."""

from __future__ import annotations

import boto3
import pytest
from alphacut import cli
from alphacut.aws import preflight
from alphacut.aws.preflight import StackShape, check, prune_versions
from alphacut_dev.template import translate_template
from botocore.stub import Stubber

ROLE = "arn:aws:iam::123456789012:role/other-stack-ApiGatewayLogRole"
TEMPLATE = translate_template()


def shape(**parameters: str) -> StackShape:
    return StackShape.from_parameters(parameters, TEMPLATE)


def clients(concurrency: int, unreserved: int, role: str = "", quota: float | None = None):
    made = {
        name: boto3.client(name, region_name="eu-west-1")
        for name in ("lambda", "service-quotas", "apigateway")
    }
    stubs = {name: Stubber(client) for name, client in made.items()}
    stubs["lambda"].add_response(
        "get_account_settings",
        {
            "AccountLimit": {
                "TotalCodeSize": 80530636800,
                "CodeSizeUnzipped": 262144000,
                "CodeSizeZipped": 52428800,
                "ConcurrentExecutions": concurrency,
                "UnreservedConcurrentExecutions": unreserved,
            },
            "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0},
        },
    )
    if quota is None:
        stubs["service-quotas"].add_client_error("get_service_quota", "NoSuchResourceException")
    else:
        stubs["service-quotas"].add_response(
            "get_service_quota",
            {
                "Quota": {
                    "ServiceCode": "lambda",
                    "QuotaCode": "L-B99A9384",
                    "QuotaName": "Concurrent executions",
                    "Value": quota,
                }
            },
        )
    stubs["apigateway"].add_response("get_account", {"cloudwatchRoleArn": role} if role else {})
    for stub in stubs.values():
        stub.activate()
    return made["lambda"], made["service-quotas"], made["apigateway"]


def verdicts(findings) -> dict[str, str]:
    return {f.check: f.verdict for f in findings}


def test_a_new_account_takes_the_defaults_and_is_told_what_it_lacks_with_the_fix():
    findings = check(*clients(10, 10), shape())
    assert verdicts(findings) == {
        "reserved concurrency": "ok",
        "concurrency for queues and sync calls": "lacks",
        "function memory": "ok",
        "API Gateway logging role": "ok",
    }
    lacking = next(f for f in findings if f.verdict == "lacks")
    assert "10 concurrent executions" in lacking.account and "L-B99A9384" in lacking.fix


def test_a_new_account_refuses_reservations_and_3538_mb_and_says_how_to_deploy_anyway():
    findings = check(*clients(10, 10), shape(ReserveAsyncConcurrency="true", TaskMemorySize="3538"))
    blocking = {f.check: f.fix for f in findings if f.verdict == "blocks"}
    assert set(blocking) == {"reserved concurrency", "function memory"}
    assert "ReserveAsyncConcurrency=false" in blocking["reserved concurrency"]
    assert "TaskMemorySize=3008" in blocking["function memory"]


def test_an_established_account_is_told_what_it_could_use():
    findings = check(*clients(1000, 1000, ROLE, quota=1000.0), shape())
    assert verdicts(findings) == {
        "reserved concurrency": "advice",
        "concurrency for queues and sync calls": "ok",
        "function memory": "advice",
        "API Gateway logging role": "advice",
    }
    fixes = " ".join(f.fix for f in findings)
    assert "ReserveAsyncConcurrency=true fits (225 reserved)" in fixes
    assert "TaskMemorySize=3538" in fixes and "ApiGatewayLogRoleExists=true" in fixes


def test_a_stage_without_the_accounts_logging_role_is_refused_before_deploying():
    findings = check(*clients(1000, 1000), shape(ApiGatewayLogRoleExists="true"))
    assert verdicts(findings)["API Gateway logging role"] == "blocks"


def test_an_account_one_short_of_the_reservations_is_refused_before_deploying():
    """325 = 100 unreserved + Segment's 100 + 125 small reservations (LowBalance's 2 among them)."""
    reserving = shape(ReserveAsyncConcurrency="true")
    assert verdicts(check(*clients(324, 324), reserving))["reserved concurrency"] == "blocks"
    assert verdicts(check(*clients(325, 325), reserving))["reserved concurrency"] == "ok"


def test_the_command_exits_1_only_when_the_account_would_refuse_the_deploy(monkeypatch, capsys):
    answers = [*clients(10, 10), *clients(10, 10)]  # made before boto3.client answers with them
    monkeypatch.setattr(boto3, "client", lambda name, **_: answers.pop(0))
    assert cli.main(["deploy", "check"]) == 0
    printed = capsys.readouterr().out
    assert "| concurrency for queues and sync calls |" in printed and "lacks 1 thing" in printed
    assert cli.main(["deploy", "check", "--parameter", "ReserveAsyncConcurrency=true"]) == 1
    assert "sam deploy would roll back" in capsys.readouterr().out


def test_prune_deletes_the_versions_no_alias_points_at_and_keeps_the_newest():
    client = boto3.client("lambda", region_name="eu-west-1")
    stub = Stubber(client)
    versions = [{"Version": v, "MemorySize": 3008} for v in ("$LATEST", "1", "2", "3", "4")]
    stub.add_response("list_versions_by_function", {"Versions": versions}, {"FunctionName": "cutout"})
    stub.add_response(
        "list_aliases",
        {
            "Aliases": [
                {
                    "Name": "live",
                    "FunctionVersion": "3",
                    "AliasArn": "arn:aws:lambda:eu-west-1:1:function:cutout:live",
                }
            ]
        },
        {"FunctionName": "cutout"},
    )
    for version in ("1", "2"):
        stub.add_response("delete_function", {}, {"FunctionName": "cutout", "Qualifier": version})
    stub.activate()
    gone = prune_versions(client, ["cutout"], keep=1)
    stub.assert_no_pending_responses()
    assert [v.version for v in gone] == ["1", "2"]  # 3 is live, 4 the newest
    assert preflight.monthly_cache_cost(gone) == pytest.approx(2 * 2.9375 * 3.95, rel=0.01)
