"""What AWS refuses at deploy or update time, read from template.yaml with its intrinsics evaluated
for the names an operator may give (a stack name, an ECR image URI, an instance type)."""

from __future__ import annotations

import json
import re

from alphacut_dev.local.intrinsics import Resolver
from alphacut_dev.template import load_sam

SAM = load_sam()
# S3's rule for bucket names: 3-63 characters, lowercase letters, digits, dots and hyphens, starting
# and ending with a letter or digit
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def resolver(stack_name: str = "alphacut", **parameters: str) -> Resolver:
    refs = {
        "AWS::StackName": stack_name,
        "AWS::StackId": f"arn:aws:cloudformation:eu-west-1:123456789012:stack/{stack_name}/"
        "5f0c6a10-7b2e-11ef-9c3d-0a1b2c3d4e5f",
        "AWS::AccountId": "123456789012",
        "AWS::Region": "eu-west-1",
        "AWS::Partition": "aws",
        "AWS::NoValue": None,
        "SegmentBackend": "sagemaker",
        "SageMakerInstanceType": "ml.g4dn.xlarge",
        **parameters,
    }
    return Resolver(refs, {}, SAM["Conditions"], SAM["Mappings"])


def statement(sid: str) -> dict:
    policy = SAM["Resources"]["SegmentModelRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    return next(s for s in policy["Statement"] if s.get("Sid") == sid)


def test_the_image_pull_grant_names_a_namespaced_repository_whole():
    for uri, repository in (
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/alphacut:v7", "team/alphacut"),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/alphacut@sha256:abc", "alphacut"),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/a/b/alphacut:1.2", "a/b/alphacut"),
    ):
        arn = resolver(SageMakerImageUri=uri).resolve(statement("PullTheImage")["Resource"])
        assert arn == f"arn:aws:ecr:eu-west-1:123456789012:repository/{repository}", uri


def test_segment_concurrency_stops_where_the_queue_mapping_does():
    spec = SAM["Parameters"]["SegmentConcurrency"]
    assert spec["MinValue"] == 2 and spec["MaxValue"] == 1000


def test_the_uploads_bucket_name_is_valid_for_any_stack_name():
    for stack in ("alphacut", "Alphacut-Prod", "A" * 60 + "-Stack-With-A-Very-Long-Name-In-Production-Use"):
        bucket = SAM["Resources"]["UploadsBucket"]["Properties"]["BucketName"]
        name = resolver(stack).resolve(bucket)
        assert BUCKET_NAME.match(name), f"{name!r} (stack {stack!r}) is not a valid bucket name"
        # the queue policy names the same bucket before it exists
        policy = SAM["Resources"]["TaskQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
        source = resolver(stack).resolve(policy["Condition"]["ArnLike"]["aws:SourceArn"])
        assert source == f"arn:aws:s3:::{name}"


def test_a_new_instance_type_replaces_the_endpoint_instead_of_updating_a_scaling_target():
    endpoint = SAM["Resources"]["SegmentEndpoint"]["Properties"]
    names = {t: resolver(SageMakerInstanceType=t).resolve(endpoint["EndpointName"])
             for t in ("ml.g4dn.xlarge", "ml.g5.xlarge", "ml.c7i.xlarge")}  # fmt: skip
    # EndpointName is a replacement property: a new name is a new endpoint and scaling target
    assert len(set(names.values())) == 3, names
    assert all(re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", n) for n in names.values()), names
    target = SAM["Resources"]["EndpointScalingTarget"]["Properties"]["ResourceId"]
    assert "SegmentEndpoint.EndpointName" in str(target)


def test_a_new_endpoint_config_keeps_the_scaled_instance_count():
    assert SAM["Resources"]["SegmentEndpoint"]["Properties"]["RetainAllVariantProperties"] is True


# ---- queues feeding functions: Lambda's mappings ignore reserved concurrency ---------------------


def reserved_concurrency(function: dict, resolve: Resolver) -> int | None:
    value = function["Properties"].get("ReservedConcurrentExecutions")
    return None if value is None else int(resolve.resolve(value))


def mapped_queues() -> list[tuple[str, str, dict]]:
    """(function, queue, mapping properties) for each SQS mapping."""
    found = []
    for resource in SAM["Resources"].values():
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            props = resource["Properties"]
            found.append((props["FunctionName"]["Ref"], props["EventSourceArn"]["Fn::GetAtt"][0], props))
    return found


def test_every_mapping_runs_within_what_its_function_reserves():
    resolve = resolver(ReserveAsyncConcurrency="true", SegmentConcurrency="100", ComposeConcurrency="10")
    wanted: dict[str, int] = {}
    for function, queue, props in mapped_queues():
        concurrency = props.get("ScalingConfig", {}).get("MaximumConcurrency")
        assert concurrency is not None, (
            f"{function}'s mapping of {queue} has no MaximumConcurrency (5 and up)"
        )
        wanted[function] = wanted.get(function, 0) + int(resolve.resolve(concurrency))
    for function, total in wanted.items():
        reserved = reserved_concurrency(SAM["Resources"][function], resolve)
        assert reserved is not None and total <= reserved, (
            f"{function}: mappings {total} > reserved {reserved}"
        )


def test_no_function_fed_by_a_queue_is_also_invoked_by_the_state_machine():
    import json

    from alphacut_dev.template import ROOT

    machine = SAM["Resources"]["TaskStateMachine"]["Properties"]
    names = {name for name, value in machine["DefinitionSubstitutions"].items() if "Arn" in name}
    arns = {name: str(machine["DefinitionSubstitutions"][name]) for name in names}
    states = json.loads((ROOT / "statemachine" / "task.asl.json").read_text())["States"]
    invoked = {
        state["Parameters"]["FunctionName"].strip("${}")
        for state in states.values()
        if state.get("Resource", "").startswith("arn:aws:states:::lambda:invoke")
    }
    for function, queue, _ in mapped_queues():
        for name in invoked:
            assert f"'{function}.Arn'" not in arns[name] and f"'{function}'" not in arns[name], (
                f"the state machine invokes {function} ({name}), which the {queue} mapping feeds"
            )


def test_every_queue_feeding_a_function_allows_five_receives():
    for function, queue, _ in mapped_queues():
        redrive = SAM["Resources"][queue]["Properties"].get("RedrivePolicy")
        if redrive is not None:  # a dead-letter queue itself keeps its messages for 14 days
            assert int(redrive["maxReceiveCount"]) >= 5, f"{queue} (feeding {function}) dead-letters too soon"


def test_the_outputs_name_the_api_domain_of_the_partition_deployed_to():
    """China's regions answer under amazonaws.com.cn: the URLs are built with AWS::URLSuffix."""
    resolve = resolver(Api="abc123", RemoveBgApi="def456", StageName="prod")
    resolve.refs.update(
        {"AWS::Region": "cn-north-1", "AWS::Partition": "aws-cn", "AWS::URLSuffix": "amazonaws.com.cn"}
    )
    urls = ("ApiUrl", "RemoveBgUrl", "StripeWebhookUrl")
    outputs = {name: resolve.resolve(SAM["Outputs"][name]["Value"]) for name in urls}
    assert outputs["ApiUrl"] == "https://abc123.execute-api.cn-north-1.amazonaws.com.cn/prod"
    assert outputs["RemoveBgUrl"] == "https://def456.execute-api.cn-north-1.amazonaws.com.cn/prod"
    assert outputs["StripeWebhookUrl"].startswith("https://abc123.execute-api.cn-north-1.amazonaws.com.cn/")
    assert not [name for name, output in SAM["Outputs"].items() if ".amazonaws.com" in json.dumps(output)]
