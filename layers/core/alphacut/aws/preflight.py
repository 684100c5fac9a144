"""What the stack needs from the AWS account it deploys to, against what the account has, with
the fix for each gap (``alphacut deploy check``), and the SnapStart versions a deploy leaves
behind (``alphacut deploy prune``).

New accounts get Lambda quotas well under AWS's defaults (10 concurrent executions, functions up
to 3,008 MB; "AWS raises these quotas automatically based on your usage"), and AWS keeps 100
executions unreserved: a template that reserves concurrency or asks for more memory than the
account allows fails and rolls back. API Gateway refuses a stage with access logs until the
account's CloudWatch role is set. Each published version of a SnapStart function keeps a cache
billed by the month (about $3.90 per GB-month, $11.7 for a 3,008 MB function).

What the stack reserves and how many queue mappings it runs are read from the translated template
at the deploy's parameters (``read_template``), so no figure here falls out of step with it.

Usage::

    template = translate_template()           # alphacut_dev.template: template.yaml in CloudFormation
    shape = StackShape.from_parameters({"ReserveAsyncConcurrency": "true"}, template)
    clients = [boto3.client(name) for name in ("lambda", "service-quotas", "apigateway")]
    findings = check(*clients, shape)
    print(render(findings))                   # check | account | stack | verdict | fix
    prune_versions(boto3.client("lambda"), ["alphacut-CutoutFunction-abc"], dry_run=True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

CONCURRENCY_QUOTA = "L-B99A9384"  # Lambda, "Concurrent executions" (Service Quotas)
UNRESERVED_MINIMUM = 100  # AWS keeps this many executions unreserved
NEW_ACCOUNT_MEMORY_MB = 3008
ESTABLISHED_CONCURRENCY = 1000  # AWS's default quota once an account leaves the new-account profile
SNAPSTART_CACHE_PER_GB_MONTH = 0.0000015046 * 730 * 3600  # https://aws.amazon.com/lambda/pricing/
SYNC_HEADROOM = 10  # sync calls a store may make at once beside the queues
INCREASE = (
    "aws service-quotas request-service-quota-increase --service-code lambda "
    f"--quota-code {CONCURRENCY_QUOTA} --desired-value {ESTABLISHED_CONCURRENCY}"
)


@dataclass(frozen=True)
class TemplateNeeds:
    """What the translated template asks of Lambda at a deploy's parameters."""

    reserved: dict[str, int]  # function -> ReservedConcurrentExecutions with ReserveAsyncConcurrency=true
    mappings: dict[str, int]  # queue mapping -> MaximumConcurrency with ReserveAsyncConcurrency=false


def read_template(template: dict[str, Any], parameters: dict[str, str]) -> TemplateNeeds:
    """Each function's reservation (as ``ReserveAsyncConcurrency=true`` would make it) and each queue
    mapping's most at once (as ``false`` would), for the resources whose conditions hold."""
    reserving = Conditions(template, {**parameters, "ReserveAsyncConcurrency": "true"})
    pooled = Conditions(template, {**parameters, "ReserveAsyncConcurrency": "false"})
    reserved, mappings = {}, {}
    for logical, resource in template["Resources"].items():
        props = resource.get("Properties") or {}
        if "Condition" in resource and not reserving.holds(resource["Condition"]):
            continue
        if resource["Type"] == "AWS::Lambda::Function":
            amount = reserving.value(props.get("ReservedConcurrentExecutions"))
            if amount is not None:
                reserved[logical] = int(amount)
        elif resource["Type"] == "AWS::Lambda::EventSourceMapping":
            most = pooled.value((props.get("ScalingConfig") or {}).get("MaximumConcurrency"))
            if most is None:  # SQS would scale it to the account's limit: the check has no figure
                raise ValueError(f"{logical} sets no ScalingConfig.MaximumConcurrency")
            mappings[logical] = int(most)
    return TemplateNeeds(reserved, mappings)


class Conditions:
    """CloudFormation's condition functions (and ``Ref``, ``Fn::FindInMap``) over a template's
    parameters: what ``Fn::If`` picks at a deploy's values. AWS::NoValue reads as None."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str]):
        declared = template.get("Parameters") or {}
        self.template = template
        self.refs = {
            name: str(parameters.get(name, spec.get("Default", ""))) for name, spec in declared.items()
        }

    def holds(self, name: str) -> bool:
        return bool(self.value(self.template["Conditions"][name]))

    def value(self, node: Any) -> Any:
        if not (isinstance(node, dict) and len(node) == 1):
            return node
        ((function, arg),) = node.items()
        if function == "Ref":
            return None if arg == "AWS::NoValue" else self.refs[arg]
        if function == "Fn::If":
            name, when_true, when_false = arg
            return self.value(when_true if self.holds(name) else when_false)
        if function == "Condition":
            return self.holds(arg)
        if function == "Fn::Equals":
            return str(self.value(arg[0])) == str(self.value(arg[1]))
        if function == "Fn::Not":
            return not self.value(arg[0])
        if function == "Fn::And":
            return all(self.value(item) for item in arg)
        if function == "Fn::Or":
            return any(self.value(item) for item in arg)
        if function == "Fn::FindInMap":
            name, first, second = (self.value(item) for item in arg)
            return self.template["Mappings"][name][first][second]
        raise ValueError(f"{function} is not read by the deploy check")


@dataclass(frozen=True)
class StackShape:
    """What the template asks of the account, from its parameters and the translated template."""

    reserve: bool = False  # ReserveAsyncConcurrency
    segment_concurrency: int = 100  # SegmentConcurrency
    sagemaker: bool = False  # SegmentBackend=sagemaker
    task_memory: int = 3008  # TaskMemorySize (Segment, Compose)
    model_memory: int = 3008  # the cutout, selfie and costume functions
    log_role_exists: bool = False  # ApiGatewayLogRoleExists
    needs: TemplateNeeds = field(default_factory=lambda: TemplateNeeds({}, {}))

    @classmethod
    def from_parameters(cls, parameters: dict[str, str], template: dict[str, Any]) -> StackShape:
        """``parameters`` as the deploy will give them (the template's defaults for the others)."""
        given = Conditions(template, parameters).refs
        return cls(
            reserve=given["ReserveAsyncConcurrency"] == "true",
            segment_concurrency=int(given["SegmentConcurrency"]),
            sagemaker=given["SegmentBackend"] == "sagemaker",
            task_memory=int(given["TaskMemorySize"]),
            log_role_exists=given["ApiGatewayLogRoleExists"] == "true",
            needs=read_template(template, parameters),
        )

    def reservations(self, reserve: bool | None = None) -> int:
        """Executions the stack reserves (with ``reserve``, or as it is set)."""
        if not (self.reserve if reserve is None else reserve):
            return 0
        return sum(self.needs.reserved.values())

    @property
    def queue_peak(self) -> int:
        """Executions the queue mappings take at their busiest without reservations."""
        return sum(self.needs.mappings.values())

    @property
    def largest_memory(self) -> int:
        return max(self.task_memory, self.model_memory)


@dataclass(frozen=True)
class Finding:
    check: str
    account: str
    stack: str
    verdict: str  # ok | blocks (the deploy would fail) | lacks (it deploys; the account limits it) | advice
    fix: str = ""


@dataclass
class Account:
    concurrency: int
    unreserved: int
    quota: float | None = None  # the applied Service Quotas value, where readable
    log_role: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def new_profile(self) -> bool:
        """Under AWS's default quota: the reduced new-account profile (memory up to 3,008 MB)."""
        return self.concurrency < ESTABLISHED_CONCURRENCY


def read_account(lambda_client: Any, quotas_client: Any, apigateway_client: Any) -> Account:
    settings = lambda_client.get_account_settings()["AccountLimit"]
    account = Account(int(settings["ConcurrentExecutions"]), int(settings["UnreservedConcurrentExecutions"]))
    try:
        answer = quotas_client.get_service_quota(ServiceCode="lambda", QuotaCode=CONCURRENCY_QUOTA)
        account.quota = float(answer["Quota"]["Value"])
    except ClientError as error:
        account.notes.append(f"Service Quotas not read ({error.response['Error']['Code']})")
    account.log_role = str(apigateway_client.get_account().get("cloudwatchRoleArn") or "")
    return account


def check(lambda_client: Any, quotas_client: Any, apigateway_client: Any, shape: StackShape) -> list[Finding]:
    """Each need of the stack against the account: concurrency, memory, the logging role."""
    account = read_account(lambda_client, quotas_client, apigateway_client)
    return [
        *_concurrency(account, shape),
        _memory(account, shape),
        _log_role(account, shape),
    ]


def _concurrency(account: Account, shape: StackShape) -> list[Finding]:
    limit = account.concurrency
    has = f"{limit} concurrent executions ({account.unreserved} unreserved)"
    reserved = shape.reservations()
    findings = []
    if reserved:
        needed = reserved + UNRESERVED_MINIMUM
        findings.append(
            Finding(
                "reserved concurrency",
                has,
                f"reserves {reserved}, AWS keeps {UNRESERVED_MINIMUM}: needs {needed}",
                "ok" if account.unreserved - UNRESERVED_MINIMUM >= reserved else "blocks",
                ""
                if account.unreserved - UNRESERVED_MINIMUM >= reserved
                else f"ReserveAsyncConcurrency=false, or a smaller SegmentConcurrency, or: {INCREASE}",
            )
        )
    else:
        would = shape.reservations(reserve=True)
        fits = account.unreserved - UNRESERVED_MINIMUM >= would
        findings.append(
            Finding(
                "reserved concurrency",
                has,
                f"reserves none ({len(shape.needs.mappings)} queue mappings, "
                f"{shape.queue_peak} at once at most)",
                "advice" if fits else "ok",
                f"ReserveAsyncConcurrency=true fits ({would} reserved): the CPU path then runs "
                f"SegmentConcurrency={shape.segment_concurrency} at once and no sync burst starves it"
                if fits
                else "",
            )
        )
    wanted = shape.queue_peak + SYNC_HEADROOM
    findings.append(
        Finding(
            "concurrency for queues and sync calls",
            has,
            f"queues at their busiest {shape.queue_peak} + {SYNC_HEADROOM} sync calls = {wanted}",
            "ok" if limit >= wanted else "lacks",
            ""
            if limit >= wanted
            else f"calls and queued work wait on each other (429, queue retries): {INCREASE}",
        )
    )
    return findings


def _memory(account: Account, shape: StackShape) -> Finding:
    has = f"up to {NEW_ACCOUNT_MEMORY_MB} MB (a new account)" if account.new_profile else "up to 10240 MB"
    asked = f"largest function {shape.largest_memory} MB"
    if account.new_profile and shape.largest_memory > NEW_ACCOUNT_MEMORY_MB:
        return Finding(
            "function memory", has, asked, "blocks", f"TaskMemorySize={NEW_ACCOUNT_MEMORY_MB}, or: {INCREASE}"
        )
    if not account.new_profile and shape.task_memory <= NEW_ACCOUNT_MEMORY_MB:
        return Finding(
            "function memory",
            has,
            asked,
            "advice",
            "TaskMemorySize=3538 gives the CPU path 2 vCPU (a tenth faster)",
        )
    return Finding("function memory", has, asked, "ok")


def _log_role(account: Account, shape: StackShape) -> Finding:
    has = f"role {account.log_role}" if account.log_role else "no role set"
    if shape.log_role_exists and not account.log_role:
        return Finding(
            "API Gateway logging role",
            has,
            "ApiGatewayLogRoleExists=true: uses the account's",
            "blocks",
            "ApiGatewayLogRoleExists=false (the stack sets it before its stages)",
        )
    if account.log_role and not shape.log_role_exists:
        return Finding(
            "API Gateway logging role",
            has,
            "sets its own",
            "advice",
            "ApiGatewayLogRoleExists=true keeps the account's role (another stack's) as it is",
        )
    return Finding("API Gateway logging role", has, "ApiGatewayLogRoleExists matches", "ok")


def render(findings: list[Finding]) -> str:
    rows = [("check", "account has", "stack needs", "verdict", "fix")]
    rows += [(f.check, f.account, f.stack, f.verdict, f.fix or "-") for f in findings]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows[:1] + [("---",) * 5] + rows[1:])


# ---- SnapStart: published versions ------------------------------------------------------------
@dataclass(frozen=True)
class Version:
    function: str
    version: str
    memory: int
    kept: bool  # an alias points at it, or it is among the newest kept


def stale_versions(lambda_client: Any, function: str, keep: int = 1) -> list[Version]:
    """The function's published versions: those an alias points at and the ``keep`` newest are
    kept, the others only cost (SnapStart caches each published version)."""
    versions = [
        v
        for page in lambda_client.get_paginator("list_versions_by_function").paginate(FunctionName=function)
        for v in page.get("Versions", [])
        if v["Version"] != "$LATEST"
    ]
    aliased = {
        a["FunctionVersion"]
        for page in lambda_client.get_paginator("list_aliases").paginate(FunctionName=function)
        for a in page.get("Aliases", [])
    }
    newest = (
        {v["Version"] for v in sorted(versions, key=lambda v: int(v["Version"]))[-keep:]} if keep else set()
    )
    return [
        Version(function, v["Version"], int(v.get("MemorySize", 128)), v["Version"] in aliased | newest)
        for v in versions
    ]


def prune_versions(
    lambda_client: Any, functions: list[str], keep: int = 1, dry_run: bool = False
) -> list[Version]:
    """Delete the published versions no alias points at (past the ``keep`` newest): what each one
    costs a month goes with it. Returns the versions deleted (or that would be)."""
    gone = []
    for function in functions:
        for version in stale_versions(lambda_client, function, keep):
            if version.kept:
                continue
            if not dry_run:
                lambda_client.delete_function(FunctionName=function, Qualifier=version.version)
            gone.append(version)
    return gone


def monthly_cache_cost(versions: list[Version]) -> float:
    """SnapStart's cache of these versions, dollars a month."""
    return sum(v.memory / 1024 * SNAPSTART_CACHE_PER_GB_MONTH for v in versions)
