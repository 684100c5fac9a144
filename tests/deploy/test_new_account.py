"""What a first deploy on a new AWS account meets, read from template.yaml with its intrinsics
evaluated at the parameters' defaults: Lambda's new-account quotas (10 concurrent executions,
3,008 MB), API Gateway's logging role (account-wide, needed before a stage writes access logs),
the tables that hold money and tasks (kept whatever happens to the stack), and the metrics it pays
for (detailed per-route metrics only where the dashboard reads them)."""

from __future__ import annotations

from alphacut_dev.template import load_sam, translate_template

from tests.deploy.test_update_rules import mapped_queues, resolver

SAM = load_sam()
NEW_ACCOUNT_MEMORY_MB, NEW_ACCOUNT_CONCURRENCY = 3008, 10
DEFAULTS = {name: str(spec.get("Default", "")) for name, spec in SAM["Parameters"].items()}


def defaults_resolver():
    return resolver(**{**DEFAULTS, "SegmentBackend": "sagemaker", "SageMakerImageUri": "x/y:z"})


def functions() -> dict[str, dict]:
    return {
        name: resource
        for name, resource in SAM["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def test_at_its_defaults_no_function_reserves_concurrency_or_asks_for_more_than_3008_mb():
    resolve = defaults_resolver()
    memory_default = resolve.resolve(SAM["Globals"]["Function"].get("MemorySize", 128))
    for name, resource in functions().items():
        props = resource["Properties"]
        memory = int(resolve.resolve(props.get("MemorySize", memory_default)))
        assert memory <= NEW_ACCOUNT_MEMORY_MB, f"{name}: {memory} MB"
        assert resolve.resolve(props.get("ReservedConcurrentExecutions")) is None, name


def test_at_its_defaults_each_queue_mapping_runs_at_most_two_at_once():
    """Without reservations a mapping draws on the account's unreserved pool: at AWS's minimum
    of 2 each (14 at most together on the CPU path, its 7 mappings), not SegmentConcurrency's 100."""
    resolve = defaults_resolver()
    mappings = [r for r in SAM["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert len(mappings) == len(mapped_queues())
    for mapping in mappings:
        concurrency = int(resolve.resolve(mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"]))
        assert concurrency == 2, (mapping["Properties"]["FunctionName"], concurrency)


def test_larger_settings_are_parameters_the_deploy_check_can_recommend():
    assert DEFAULTS["ReserveAsyncConcurrency"] == "false"
    assert (
        DEFAULTS["TaskMemorySize"] == "3008" and int(SAM["Parameters"]["TaskMemorySize"]["MaxValue"]) == 10240
    )
    resolve = resolver(**{**DEFAULTS, "ReserveAsyncConcurrency": "true", "TaskMemorySize": "3538"})
    segment = SAM["Resources"]["SegmentFunction"]["Properties"]
    assert int(resolve.resolve(segment["MemorySize"])) == 3538
    assert int(resolve.resolve(segment["ReservedConcurrentExecutions"])) == int(
        DEFAULTS["SegmentConcurrency"]
    )


def depends_on(resources: dict, name: str) -> set[str]:
    """Every resource ``name`` waits for: DependsOn, Ref, GetAtt and Sub references, transitively."""

    def direct(value) -> set[str]:
        found: set[str] = set()
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "Ref" and isinstance(inner, str) and inner in resources:
                    found.add(inner)
                elif key == "Fn::GetAtt":
                    target = inner[0] if isinstance(inner, list) else inner.split(".")[0]
                    found.add(target)
                elif key == "Fn::Sub":
                    text = inner[0] if isinstance(inner, list) else inner
                    found |= {part.split("}")[0].split(".")[0] for part in text.split("${")[1:]} & set(
                        resources
                    )
                    found |= direct(inner[1]) if isinstance(inner, list) else set()
                else:
                    found |= direct(inner)
        elif isinstance(value, list):
            for inner in value:
                found |= direct(inner)
        return found

    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        resource = resources[current]
        after = resource.get("DependsOn", [])
        edges = ({after} if isinstance(after, str) else set(after)) | direct(resource.get("Properties", {}))
        edges |= direct(resource.get("Metadata", {}))
        for edge in edges - seen:
            seen.add(edge)
            todo.append(edge)
    return seen


def test_both_stages_are_made_after_the_accounts_logging_role_is_set():
    resources = translate_template()["Resources"]
    stages = [name for name, r in resources.items() if r["Type"] == "AWS::ApiGateway::Stage"]
    assert len(stages) == 2
    for stage in stages:
        assert "AccessLogSetting" in resources[stage]["Properties"]
        assert "ApiGatewayAccount" in depends_on(resources, stage), stage


def test_the_tables_that_hold_money_and_tasks_outlive_a_replacement_or_the_stack():
    resources = translate_template()["Resources"]
    for table in ("UsageTable", "TasksTable"):
        assert resources[table]["DeletionPolicy"] == "Retain", table
        assert resources[table]["UpdateReplacePolicy"] == "Retain", table
