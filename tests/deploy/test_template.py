"""template.yaml checks: offline SAM translation linted by cfn-lint, `sam validate`, and `sam build`
without Docker, with every function's unzipped size (code + layers) under Lambda's 250 MB."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from alphacut.models.intake import MODELS_LAYER_ROOM
from alphacut_dev.template import ROOT, load_sam, translate_template

SAM = ROOT / ".cache" / "sam-venv" / "bin" / "sam"
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
# Warnings that come from the offline translation itself, not from our template:
# W2001 - SAM already substituted the usage plan parameters, so they look unused;
# W3005 - SAM writes DependsOn next to a Ref on its generated API key and usage plan.
TRANSLATION_WARNINGS = {"W2001", "W3005"}


def _sam(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    if not SAM.exists():
        pytest.fail(f"{SAM} is missing: `make setup` installs the SAM CLI there")
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        SAM_CLI_TELEMETRY="0",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return subprocess.run([str(SAM), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_translated_template_passes_cfn_lint(tmp_path):
    path = tmp_path / "cfn.json"
    path.write_text(json.dumps(translate_template()))
    result = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    findings = json.loads(result.stdout or "[]")
    unexpected = [f for f in findings if f["Rule"]["Id"] not in TRANSLATION_WARNINGS]
    assert unexpected == [], json.dumps(unexpected, indent=1)


def test_translated_template_has_the_promised_shape():
    resources = translate_template()["Resources"]
    types = [r["Type"] for r in resources.values()]
    assert types.count("AWS::Lambda::Function") >= 2
    plan = resources["StarterPlan"]["Properties"]
    assert plan["Throttle"] == {"RateLimit": {"Ref": "RateLimit"}, "BurstLimit": {"Ref": "BurstLimit"}}
    assert plan["Quota"] == {"Limit": {"Ref": "DailyQuota"}, "Period": "DAY"}
    for name in ("StarterPlan", "FreePlan", "BusinessPlan", "CreditsPlan"):  # one key, both APIs
        stages = resources[name]["Properties"]["ApiStages"]
        assert [stage["ApiId"] for stage in stages] == [{"Ref": "Api"}, {"Ref": "RemoveBgApi"}]
    plans = {
        r["Properties"]["UsagePlanName"]["Fn::Sub"]
        for r in resources.values()
        if r["Type"] == "AWS::ApiGateway::UsagePlan"
    }
    assert plans == {
        "${AWS::StackName}-free",
        "${AWS::StackName}-starter",
        "${AWS::StackName}-business",
        "${AWS::StackName}-credits",
    }
    credits = resources["CreditsPlan"]["Properties"]  # credit-based: its tag, and no daily quota
    assert {"Key": "billing", "Value": "credits"} in credits["Tags"] and "Quota" not in credits
    for name in ("StarterPlan", "FreePlan", "BusinessPlan", "CreditsPlan"):  # each plan's model
        plan = name.removesuffix("Plan")
        assert {"Key": "model", "Value": {"Ref": f"{plan}Model"}} in resources[name]["Properties"]["Tags"]
    api = resources["Api"]["Properties"]
    vendor_paths = (
        "/api/cutout",
        "/jdai/SelfieSeg",
        "/api/tasks/visual/segmentation",
        "/api/tasks/visual/segmentation/{task_id}",
        "/ai/image/cut/out",
        "/api/cutout/general/apparel-background-removal",
    )
    for path in ("/v1/cutout", "/v1/selfie", "/v1/costume", "/v1/usage", "/v1/openapi.json", *vendor_paths):
        for method, operation in api["Body"]["paths"][path].items():
            if method != "options":  # the CORS preflight: no key (test_both_apis_answer_the_preflight...)
                assert operation["security"] == [{"KeyAuthorizer": []}]
    authorizer = api["Body"]["securityDefinitions"]["KeyAuthorizer"]["x-amazon-apigateway-authorizer"]
    assert (
        authorizer["type"] == "request" and authorizer["identitySource"] == "method.request.header.x-api-key"
    )
    assert (
        authorizer["authorizerResultTtlInSeconds"] == 300
    )  # KeyCacheSeconds' default: how late a revocation bites
    responses = api["Body"]["x-amazon-apigateway-gateway-responses"]
    assert (
        str(responses["ACCESS_DENIED"]["statusCode"]) == str(responses["UNAUTHORIZED"]["statusCode"]) == "401"
    )
    # no API Gateway API key or usage plan key per customer: at most 10,000 of them per account
    kinds = {resource["Type"] for resource in resources.values()}
    assert not kinds & {"AWS::ApiGateway::ApiKey", "AWS::ApiGateway::UsagePlanKey"}
    assert resources["UsageTable"]["Properties"]["KeySchema"][1]["AttributeName"] == "sk"
    bucket = resources["ResultsBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    assert bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 1
    assert "ServerSideEncryptionConfiguration" in bucket["BucketEncryption"]
    policy = resources["ResultsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert policy["Effect"] == "Deny" and policy["Condition"]["Bool"]["aws:SecureTransport"] == "false"


def test_sam_validate():
    result = _sam("validate", "--lint", "--template-file", "template.yaml", "--region", "us-east-1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def _tree_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class _CfnLoader(yaml.SafeLoader):
    pass


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def test_sam_build_without_docker_and_functions_fit_in_lambda(tmp_path):
    build = tmp_path / "build"
    result = _sam(
        "build", "--template-file", "template.yaml", "--build-dir", str(build), "--region", "us-east-1"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    template = yaml.load((build / "template.yaml").read_text(), Loader=_CfnLoader)
    resources = template["Resources"]
    sizes = {}
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        total = _tree_bytes(build / resource["Properties"]["CodeUri"])
        # the global layers (core) and the function's own (the models layer, for the model functions)
        for layer in [*template["Globals"]["Function"]["Layers"], *resource["Properties"].get("Layers", [])]:
            content = Path(
                resources[layer["Ref"] if isinstance(layer, dict) else layer]["Properties"]["ContentUri"]
            )
            total += _tree_bytes(content if content.is_absolute() else build / content)
        sizes[name] = total
    print({name: f"{size / 2**20:.1f} MB" for name, size in sizes.items()})
    assert sizes and all(size < LAMBDA_UNZIPPED_LIMIT for size in sizes.values()), sizes
    # the room `alphacut models add` leaves the models layer fits beside the rest of a model function
    models_layer = Path(resources["ModelsLayer"]["Properties"]["ContentUri"])
    models_bytes = _tree_bytes(models_layer if models_layer.is_absolute() else build / models_layer)
    with_models = [
        name for name, r in resources.items() if "ModelsLayer" in str(r.get("Properties", {}).get("Layers"))
    ]
    rest = max(sizes[name] - models_bytes for name in with_models)
    assert rest + MODELS_LAYER_ROOM <= LAMBDA_UNZIPPED_LIMIT, (rest, MODELS_LAYER_ROOM)
    core = build / "CoreLayer" / "python"
    assert (core / "alphacut" / "pipeline.py").exists() and (core / "onnxruntime").is_dir()
    assert not (core / "botocore").exists()
    assert not list((core / "onnxruntime" / "capi").glob("libonnxruntime.so*"))  # pruned: 28 MB
    # the pruned layer still runs the int8 graph (the layer's wheels are this machine's platform)
    models = Path(resources["ModelsLayer"]["Properties"]["ContentUri"])
    graph = (models if models.is_absolute() else build / models) / "isnet" / "graph_int8.onnx"
    run = (
        f"import sys; sys.path.insert(0, {str(core)!r}); import onnxruntime as ort, numpy as np; "
        f"s = ort.InferenceSession({str(graph)!r}, providers=['CPUExecutionProvider']); "
        "print(ort.__file__, s.run(None, {'input': np.zeros((1, 3, 1024, 1024), np.float32)})[0].shape)"
    )
    done = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(core)) and "(1, 1, 1024, 1024)" in done.stdout, done.stdout


def test_the_task_queue_lets_a_throttled_dispatch_retry_before_the_dead_letter_queue():
    resources = translate_template()["Resources"]
    queue = resources["TaskQueue"]["Properties"]
    dispatch_timeout = resources["DispatchFunction"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * dispatch_timeout  # AWS's guidance for Lambda consumers
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 5


def test_stranded_tasks_have_a_consumer_and_a_rule():
    resources = translate_template()["Resources"]
    mappings = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    dead_letters = next(
        m for m in mappings if m["EventSourceArn"] == {"Fn::GetAtt": ["TaskDeadLetterQueue", "Arn"]}
    )
    assert dead_letters["FunctionName"] == {"Ref": "FinalizeFunction"}
    rule = next(r["Properties"] for r in resources.values() if r["Type"] == "AWS::Events::Rule")
    assert rule["EventPattern"]["detail"]["status"] == ["FAILED", "TIMED_OUT", "ABORTED"]
    assert rule["EventPattern"]["detail"]["stateMachineArn"] == [{"Ref": "TaskStateMachine"}]
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["FinalizeFunction", "Arn"]}
    alarms = {
        r["Properties"]["MetricName"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert {"UnbilledTasks", "TasksEndedByFinalizer"} <= alarms


def test_the_task_functions_have_reserved_concurrency():
    resources = translate_template()["Resources"]
    for name in (
        "DispatchFunction",
        "SegmentFunction",
        "NotifyFunction",
        "EndTaskFunction",
        "FinalizeFunction",
    ):
        reserved = resources[name]["Properties"]["ReservedConcurrentExecutions"]
        value = reserved["Fn::If"][1]
        if isinstance(value, dict):  # a parameter (SegmentConcurrency): its default and floor
            parameter = load_sam()["Parameters"][value["Ref"]]
            value = min(int(parameter["Default"]), int(parameter["MinValue"]))
        assert reserved["Fn::If"][0] == "ReserveConcurrency" and value >= 1, name


# ---- least privilege --------------------------------------------------------------------------
# Allow statements may name "*" only here, each for a reason AWS gives no narrower form of:
WILDCARD_ALLOWED = {
    "ecr:GetAuthorizationToken",  # an account-wide login token: ECR has no resource for it
    "cloudwatch:PutMetricData",  # no resource-level permissions; conditioned on the namespace
    "ses:GetAccount",  # whether SES's sandbox applies: an account setting, read-only, no resource
    "ses:GetSuppressedDestination",  # whether an address bounced: the account's list, read-only, no resource
}
# AWS managed policies a role may carry (all write-only telemetry):
MANAGED_ALLOWED = {
    "AWSLambdaBasicExecutionRole",  # SAM's default: write the function's logs
    "AWSXrayWriteOnlyAccess",  # Tracing: Active: send traces
    "AmazonAPIGatewayPushToCloudWatchLogs",  # API Gateway's account role: access logs
}
# What no function here needs, and what a decoder exploited would want first:
FORBIDDEN_ACTIONS = {
    "s3:DeleteObject",
    "s3:PutObjectAcl",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketPolicy",
    "dynamodb:DeleteItem",
    "dynamodb:Scan",
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteTable",
}
WHOLE_BUCKET = re.compile(r"(\}|:::[^/\"$]*)/\*$")  # bucket/* (every key), not bucket/prefix/*
CHECKOV = ROOT / ".cache" / "checkov-venv" / "bin" / "checkov"


def _branches(value):
    """Both branches of an Fn::If (what a deployment may get), AWS::NoValue left out."""
    if isinstance(value, dict) and "Fn::If" in value:
        return [b for branch in value["Fn::If"][1:] for b in _branches(branch)]
    if value == {"Ref": "AWS::NoValue"}:
        return []
    return [value]


def _allow_statements(resources):
    for name, resource in resources.items():
        props = resource.get("Properties", {})
        documents = [policy["PolicyDocument"] for policy in props.get("Policies", [])]
        if "PolicyDocument" in props:
            documents.append(props["PolicyDocument"])
        for document in documents:
            statements = document["Statement"]
            for statement in statements if isinstance(statements, list) else [statements]:
                for branch in _branches(statement):
                    if branch.get("Effect") == "Allow":
                        yield name, branch


def _as_list(value):
    return value if isinstance(value, list) else [value]


def privilege_violations(cfn: dict) -> list[tuple[str, str]]:
    """Allow statements with a wildcard action or a "*" resource outside the allow-list, and AWS
    managed policies outside theirs."""
    resources = cfn["Resources"]
    found = []
    for name, statement in _allow_statements(resources):
        actions = _as_list(statement.get("Action", []))
        found += [(name, f"action {a}") for a in actions if "*" in a and a not in WILDCARD_ALLOWED]
        found += [(name, f"action {a}") for a in actions if a in FORBIDDEN_ACTIONS]
        for resource in _as_list(statement.get("Resource", [])):
            if resource == "*" and not set(actions) <= WILDCARD_ALLOWED:
                found.append((name, f"resource * for {actions}"))
            text = resource.get("Fn::Sub") if isinstance(resource, dict) else resource
            text = text[0] if isinstance(text, list) else text
            if (
                isinstance(text, str)
                and text.startswith(("arn:${AWS::Partition}:s3", "${"))
                and WHOLE_BUCKET.search(text)
            ):
                found.append((name, f"every key of a bucket: {text}"))
    for name, resource in resources.items():
        for arn in resource.get("Properties", {}).get("ManagedPolicyArns", []):
            text = json.dumps(arn)
            if "iam::aws:policy" in text and not any(allowed in text for allowed in MANAGED_ALLOWED):
                found.append((name, f"managed policy {text}"))
    return found


def test_no_role_may_do_more_than_its_job():
    assert privilege_violations(translate_template()) == []


def test_the_privilege_check_catches_a_crud_policy_and_a_full_access_role():
    from alphacut_dev import template

    sam = template.load_sam()
    sam["Resources"]["CutoutFunction"]["Properties"]["Policies"].append(
        {"S3CrudPolicy": {"BucketName": {"Ref": "ResultsBucket"}}}
    )
    sam["Resources"]["SegmentModelRole"]["Properties"]["ManagedPolicyArns"] = [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AmazonSageMakerFullAccess"}
    ]
    cfn = template.translate_sam(
        sam, parameters={"SegmentBackend": "sagemaker", "SageMakerImageUri": "x/y:z"}
    )
    problems = privilege_violations(cfn)
    assert ("CutoutFunctionRole", "action s3:DeleteObject") in problems
    assert any(name == "CutoutFunctionRole" and "every key of a bucket" in p for name, p in problems)
    assert any("AmazonSageMakerFullAccess" in p for _, p in problems)


def test_api_functions_cannot_delete_or_scan_billing_data():
    resources = translate_template()["Resources"]
    api_policy = resources["ApiFunctionsPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    actions = {a for s in api_policy for a in _as_list(s["Action"])}
    assert not actions & {
        "dynamodb:DeleteItem",
        "dynamodb:Scan",
        "dynamodb:BatchWriteItem",
        "s3:DeleteObject",
        "s3:PutObjectAcl",
        "s3:PutLifecycleConfiguration",
    }
    meter = next(s for s in api_policy if s["Sid"] == "MeterAndIdempotency")
    assert meter["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == [
        "usage#*",
        "idem#*",
        "call#*",
        "unbilled#*",  # a delivery its balance could not pay, for an operator
    ]
    credits = next(s for s in api_policy if s["Sid"] == "CreditsReservedAndSettled")
    assert credits["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["credits#*", "hold#*"]


def test_storage_and_logs_are_kept_safe():
    resources = translate_template()["Resources"]
    uploads_policy = resources["UploadsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert (
        uploads_policy["Effect"] == "Deny"
        and uploads_policy["Condition"]["Bool"]["aws:SecureTransport"] == "false"
    )
    rules = {r["Id"]: r for r in resources["UploadsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert (
        rules["ExpireUploads"]["Prefix"] == "incoming/"
        and rules["ExpireUploadResults"]["Prefix"] == "results/"
    )
    usage = resources["UsageTable"]["Properties"]
    assert usage["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert usage["DeletionProtectionEnabled"] is True
    assert "DestinationArn" in resources["ApiStage"]["Properties"]["AccessLogSetting"]
    for name, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::Function":
            assert resource["Properties"]["LoggingConfig"]["LogGroup"] == {"Ref": "FunctionLogs"}, name
    assert resources["FunctionLogs"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    queue_policy = resources["TaskQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert queue_policy["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    role = resources["SegmentModelRole"]["Properties"]
    assert "ManagedPolicyArns" not in role


@pytest.mark.slow
def test_checkov_finds_nothing_that_is_not_fixed_or_suppressed_with_a_reason(tmp_path):
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: `make setup` installs checkov there")
    cfn = translate_template()
    resources = cfn["Resources"]
    # SAM does not carry an Api's Metadata to the Stage and Deployment it makes from it: copy it,
    # so that the reasons stay in template.yaml
    for resource in resources.values():
        if resource["Type"] in ("AWS::ApiGateway::Stage", "AWS::ApiGateway::Deployment"):
            resource.setdefault("Metadata", resources["Api"].get("Metadata", {}))
    path = tmp_path / "cfn.json"
    path.write_text(json.dumps(cfn))
    result = subprocess.run(
        [str(CHECKOV), "-f", str(path), "--framework", "cloudformation", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = [(f["check_id"], f["resource"]) for f in report["results"]["failed_checks"]]
    assert failed == []
    skipped = report["results"]["skipped_checks"]
    reasons = [s["check_result"].get("suppress_comment") or "" for s in skipped]
    assert len(skipped) >= 30 and all(len(reason.split()) >= 8 for reason in reasons), reasons
    assert len(report["results"]["passed_checks"]) >= 150


def test_remove_bg_api_answers_key_rate_and_quota_refusals_as_remove_bg_does():
    api = translate_template()["Resources"]["RemoveBgApi"]["Properties"]["Body"]
    assert set(api["paths"]) == {"/v1.0/removebg", "/v1.0/account", "/v1.0/openapi.json"}
    for methods in api["paths"].values():
        for method, operation in methods.items():
            if method != "options":
                assert operation["security"] == [{"KeyAuthorizer": []}]
    responses = api["x-amazon-apigateway-gateway-responses"]
    for kind in ("ACCESS_DENIED", "UNAUTHORIZED"):  # a bad or missing key, in remove.bg's shape
        body = json.loads(responses[kind]["responseTemplates"]["application/json"])
        assert str(responses[kind]["statusCode"]) == "403" and body["errors"][0]["code"] == "auth_failed"


def test_only_model_functions_get_the_models_layer_and_sync_ones_start_from_a_snapstart_snapshot():
    resources = translate_template()["Resources"]
    models = {"CutoutFunction", "SelfieFunction", "CostumeFunction", "SegmentFunction"}
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        layers = {layer["Ref"].rstrip("0123456789abcdef") for layer in resource["Properties"]["Layers"]}
        assert ("ModelsLayer" in layers) == (name in models), name
        snapstart = resource["Properties"].get("SnapStart", {}).get("ApplyOn")
        assert (snapstart == "PublishedVersions") == (name in models - {"SegmentFunction"}), name
    uri = resources["Api"]["Properties"]["Body"]["paths"]["/v1/cutout"]["post"][
        "x-amazon-apigateway-integration"
    ]["uri"]
    assert "CutoutFunctionAliaslive" in json.dumps(uri)  # API Gateway calls the published alias


def test_both_apis_answer_the_preflight_without_a_key_and_name_the_origin_everywhere():
    resources = translate_template()["Resources"]
    for api_id in ("Api", "RemoveBgApi"):
        body = resources[api_id]["Properties"]["Body"]
        for path, methods in body["paths"].items():
            preflight = methods["options"]
            assert "security" not in preflight, path
            integration = preflight["x-amazon-apigateway-integration"]
            assert integration["type"] == "mock"
            headers = integration["responses"]["default"]["responseParameters"]
            allowed = headers["method.response.header.Access-Control-Allow-Headers"].strip("'").split(",")
            assert {"Content-Type", "x-api-key", "Idempotency-Key"} <= set(allowed)
            assert headers["method.response.header.Access-Control-Allow-Origin"] == {
                "Fn::Sub": "'${CorsAllowOrigin}'"
            }
        responses = body["x-amazon-apigateway-gateway-responses"]
        assert {"DEFAULT_4XX", "DEFAULT_5XX", "ACCESS_DENIED", "UNAUTHORIZED"} <= set(responses)
        for kind, response in responses.items():
            origin = response["responseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]
            assert origin == {"Fn::Sub": "'${CorsAllowOrigin}'"}, (api_id, kind)


def test_the_cutout_and_segment_functions_run_the_model_engine_and_selfie_stays_fp32():
    from alphacut.models.engines import choose_engine

    sam = load_sam()
    assert sam["Parameters"]["ModelEngine"]["Default"] == "onnxruntime-int8"
    for function in ("CutoutFunction", "SegmentFunction"):
        variables = sam["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert variables["ALPHACUT_ENGINE"] == {"Ref": "ModelEngine"}, function
    selfie = sam["Resources"]["SelfieFunction"]["Properties"].get("Environment", {}).get("Variables", {})
    assert "ALPHACUT_ENGINE" not in selfie  # onnxruntime fp32: Lambda's CPUs have no bf16
    for value in sam["Parameters"]["ModelEngine"]["AllowedValues"]:
        assert choose_engine(value, flags={"avx2"}, has_openvino=False).name == "onnxruntime"


@pytest.mark.parametrize("url", ["none", "s3://my-artifacts/alphacut/model.tar.gz"])
def test_the_gpu_endpoint_reads_the_model_data_it_is_given_and_that_object_only(url):
    from alphacut_dev.local.iam import lenient
    from alphacut_dev.local.intrinsics import Resolver

    sam = load_sam()
    assert re.fullmatch(sam["Parameters"]["GpuModelDataUrl"]["AllowedPattern"], url)
    assert not re.fullmatch(sam["Parameters"]["GpuModelDataUrl"]["AllowedPattern"], "https://x/model.tar.gz")
    refs = {name: str(spec.get("Default", "")) for name, spec in sam["Parameters"].items()}
    refs.update({"GpuModelDataUrl": url, "AWS::Partition": "aws", "AWS::NoValue": None})
    resolver = Resolver(refs, {}, sam["Conditions"], sam.get("Mappings", {}))
    model = sam["Resources"]["SegmentModel"]["Properties"]["PrimaryContainer"]
    container = resolver.resolve({"ModelDataUrl": model["ModelDataUrl"]})
    policy = sam["Resources"]["SegmentModelRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    statements = lenient(resolver, policy["Statement"])
    reads = [s for s in statements if isinstance(s, dict) and s.get("Sid") == "ModelData"]
    if url == "none":  # no model data: no ModelDataUrl, no grant (AWS::NoValue drops both)
        assert container == {} and reads == []
    else:
        assert container == {"ModelDataUrl": url}
        assert reads == [
            {
                "Sid": "ModelData",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::my-artifacts/alphacut/model.tar.gz",
            }
        ]


def test_the_money_alarms_watch_unpaid_deliveries_and_the_sweeps_errors_lateness_and_failures():
    resources = translate_template()["Resources"]
    alarms = {
        r["Properties"]["MetricName"]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert {"UnbilledCalls", "SweepErrors", "OldestDueSeconds"} <= alarms.keys()
    assert all(
        alarms[name]["Namespace"] == "Alphacut"
        for name in ("UnbilledCalls", "SweepErrors", "OldestDueSeconds")
    )
    assert (
        alarms["OldestDueSeconds"]["Statistic"] == "Maximum"
        and alarms["OldestDueSeconds"]["Threshold"] == 900
    )
    failing = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"]["MetricName"] == "Errors"
    ]
    assert any(a["Dimensions"][0]["Value"] == {"Ref": "SweepFunction"} for a in failing)
    source = (ROOT / "functions" / "sweep" / "app.py").read_text()
    assert '"SweepErrors"' in source and '"OldestDueSeconds"' in source
    assert "log_metrics" in (ROOT / "functions" / "meter" / "app.py").read_text()  # UnbilledCalls flushed


def test_every_keyless_route_has_a_stage_throttle_and_the_waf_is_on_by_default_for_stripe_and_keyed_calls():
    from alphacut.api.app import KEYLESS_METHODS

    cfn = translate_template()
    resources, parameters = cfn["Resources"], cfn["Parameters"]
    stage = next(r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Stage"
                 and r["Properties"]["RestApiId"] == {"Ref": "Api"})  # fmt: skip
    throttled = {
        "/" + s["ResourcePath"].removeprefix("/").replace("~1", "/").lstrip("/"): s
        for s in stage["MethodSettings"]
        if "ThrottlingRateLimit" in s
    }
    assert {(path, s["HttpMethod"]) for path, s in throttled.items()} == set(KEYLESS_METHODS)
    for setting in throttled.values():
        assert setting["ThrottlingRateLimit"] == {"Ref": "KeylessRateLimit"}
        assert setting["ThrottlingBurstLimit"] == {"Ref": "KeylessBurstLimit"}
    assert parameters["KeylessRateLimit"]["Default"] == 20 and parameters["WebAclRateLimit"]["Default"] == "0"
    assert parameters["WebAclKeyedRateLimit"]["Default"] == "30000"
    assert len(parameters["StripeWebhookAddresses"]["Default"].split(",")) == 15  # Stripe's list, 2026-05
    acl = resources["WebAcl"]
    assert acl["Condition"] == "UseWaf"
    assert cfn["Conditions"]["UseWaf"] == {
        "Fn::Or": [{"Condition": name} for name in ("UseRateRules", "UseKeyedRule", "GuardStripeWebhook")]
    }
    listed = {rule["Fn::If"][1]["Name"]: rule["Fn::If"] for rule in acl["Properties"]["Rules"]}
    assert {name: entry[0] for name, entry in listed.items()} == {
        "stripe-agent-from-elsewhere": "GuardStripeWebhook",
        "stripe-webhook-from-stripe": "GuardStripeWebhook",
        "rate-per-address": "UseRateRules",
        "result-links-per-address": "UseRateRules",
        "keyed-per-address": "UseKeyedRule",
    }
    assert all(entry[2] == {"Ref": "AWS::NoValue"} for entry in listed.values())
    rules = {name: entry[1] for name, entry in listed.items()}
    rated = {name: rule for name, rule in rules.items() if "RateBasedStatement" in rule["Statement"]}
    assert {name: rule["Statement"]["RateBasedStatement"]["Limit"] for name, rule in rated.items()} == {
        "rate-per-address": {"Ref": "WebAclRateLimit"},
        "result-links-per-address": {"Ref": "WebAclResultLinkRateLimit"},  # a bucket of their own
        "keyed-per-address": {"Ref": "WebAclKeyedRateLimit"},
    }
    for rule in rated.values():  # 429 and Retry-After, as API Gateway's throttle: a 403 reads as a bad key
        statement = rule["Statement"]["RateBasedStatement"]
        custom = rule["Action"]["Block"]["CustomResponse"]
        assert custom["ResponseCode"] == 429 and statement["AggregateKeyType"] == "IP"
        assert custom["ResponseHeaders"] == [{"Name": "Retry-After", "Value": "60"}]
        assert custom["CustomResponseBodyKey"] in acl["Properties"]["CustomResponseBodies"]
    assert rules["stripe-agent-from-elsewhere"]["Action"] == {"Count": {}}  # the alarm's metric
    stale = resources["StripeWebhookListStaleAlarm"]
    assert (
        stale["Condition"] == "GuardStripeWebhook" and stale["Properties"]["MetricName"] == "CountedRequests"
    )
    assert {"Name": "Rule", "Value": {"Fn::Sub": "${AWS::StackName}-stripe-agent-from-elsewhere"}} in stale[
        "Properties"
    ]["Dimensions"]
    stripe = rules["stripe-webhook-from-stripe"]["Statement"]["AndStatement"]["Statements"]
    assert stripe[1]["NotStatement"]["Statement"]["IPSetReferenceStatement"]["Arn"] == {
        "Fn::GetAtt": ["StripeWebhookIpSet", "Arn"]
    }
    assert resources["StripeWebhookIpSet"]["Condition"] == "GuardStripeWebhook"
    priorities = [rule["Priority"] for rule in rules.values()]
    assert sorted(priorities) == list(range(5))  # WAF refuses two rules of one priority
    associated = [r for r in resources.values() if r["Type"] == "AWS::WAFv2::WebACLAssociation"]
    assert len(associated) == 2 and all(r["Condition"] == "UseWaf" for r in associated)  # both APIs


def test_the_waf_rule_is_scoped_to_every_keyless_route_but_stripes_webhook_and_the_page_itself():
    from alphacut.api.app import KEYLESS_METHODS
    from alphacut_dev.local.waf import WebAcl

    acl = WebAcl()
    acl.load(load_sam()["Resources"]["WebAcl"], on=False)
    keyless = acl.rule("rate-per-address").scope + acl.rule("result-links-per-address").scope
    uncovered = {
        path for path, _ in KEYLESS_METHODS if not any(fragment in f"/Prod{path}" for fragment in keyless)
    }
    assert uncovered == {"/v1/billing/stripe", "/"}  # Stripe's own addresses; the page is cached static text
    assert not any(fragment in "/Prod/v1/cutout" for fragment in keyless)  # keyed: the keyed rule
    assert acl.rule("result-links-per-address").scope == ("/v1/results/",)  # result links alone
    assert not any("/v1/results/" in fragment for fragment in acl.rule("rate-per-address").scope)
    assert acl.match_rule("stripe-webhook-from-stripe") is not None


def test_the_key_authorizers_throttles_and_errors_and_each_apis_5xx_answers_raise_alarms():
    """Both fail a keyed call before any function of the service runs: nothing else counts them."""
    sam = load_sam()
    alarms = [r["Properties"] for r in sam["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]

    def watching(namespace: str, metric: str) -> list[dict]:
        return [a for a in alarms if a["Namespace"] == namespace and a["MetricName"] == metric]

    for metric in ("Throttles", "Errors"):
        dimensions = [a["Dimensions"] for a in watching("AWS/Lambda", metric)]
        assert [{"Name": "FunctionName", "Value": {"Ref": "KeyAuthorizerFunction"}}] in dimensions, metric
    names = {sam["Resources"][api]["Properties"]["Name"]["Fn::Sub"] for api in ("Api", "RemoveBgApi")}
    watched = {
        (a["Dimensions"][0]["Value"]["Fn::Sub"], a["Dimensions"][1]["Value"]["Ref"], a["Statistic"])
        for a in watching("AWS/ApiGateway", "5XXError")
        if [d["Name"] for d in a["Dimensions"]] == ["ApiName", "Stage"]
    }
    assert watched == {(name, "StageName", "Average") for name in names}  # the share answered 5xx


def test_every_mail_goes_through_a_configuration_set_that_suppresses_bounces_and_reports_reputation():
    resources = load_sam()["Resources"]
    (name,) = [n for n, r in resources.items() if r["Type"] == "AWS::SES::ConfigurationSet"]
    props = resources[name]["Properties"]
    assert props["ReputationOptions"] == {"ReputationMetricsEnabled": True}
    assert sorted(props["SuppressionOptions"]["SuppressedReasons"]) == ["BOUNCE", "COMPLAINT"]
    mailing = [
        n
        for n, r in resources.items()
        if "MAIL_FROM" in r.get("Properties", {}).get("Environment", {}).get("Variables", {})
    ]
    assert sorted(mailing) == ["BillingFunction", "LowBalanceFunction"]
    for function in mailing:
        assert resources[function]["Properties"]["Environment"]["Variables"]["MAIL_CONFIGURATION_SET"] == {
            "Ref": name
        }
    alarms = {
        r["Properties"]["MetricName"]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"]["Namespace"] == "AWS/SES"
    }
    # SES reviews an account at a 5% bounce rate or a 0.1% complaint rate
    assert alarms["Reputation.BounceRate"]["Threshold"] == 0.05
    assert alarms["Reputation.ComplaintRate"]["Threshold"] == 0.001


def test_stripes_addresses_default_is_what_the_refresh_script_writes_and_passes_the_parameters_pattern():
    import importlib.util
    import re

    spec = importlib.util.spec_from_file_location("refresh", ROOT / "scripts" / "stripe_webhook_addresses.py")
    refresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(refresh)
    declared = load_sam()["Parameters"]["StripeWebhookAddresses"]
    default, pattern = declared["Default"], declared["AllowedPattern"]
    listing = "\n".join(block.removesuffix("/32") for block in default.split(",")) + "\n"
    assert refresh.parameter(listing) == default
    assert re.fullmatch(pattern, default) and re.fullmatch(pattern, "none")
    assert not re.fullmatch(pattern, "54.187.174.169")  # WAF's IP set takes CIDR blocks only
    assert not re.fullmatch(pattern, "0.0.0.0/0")  # and no /0
    assert refresh.parameter(listing + "2600:1f18::1\n") == default  # an IPv6 line left out, said
