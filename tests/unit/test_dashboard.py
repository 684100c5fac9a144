"""The operator's dashboard shows what the stack really emits: every metric of our namespace is
one the code adds (``add_metric``), every API Gateway widget names an API and a route the template
defines (with per-method metrics on), and every queue is one the stack makes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from alphacut_dev.template import load_sam

ROOT = Path(__file__).resolve().parents[2]
CODE = [*ROOT.glob("layers/core/alphacut/**/*.py"), *ROOT.glob("functions/*/app.py")]
AWS_METRICS = {
    "AWS/ApiGateway": {"Count", "Latency", "IntegrationLatency", "4XXError", "5XXError"},
    "AWS/SQS": {
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateAgeOfOldestMessage",
    },
}


def emitted_metric_names() -> set[str]:
    """Names passed to add_metric anywhere; ``f"{route}Delivered"`` with each route name given."""
    names: set[str] = set()
    for path in CODE:
        text = path.read_text()
        names.update(re.findall(r'add_metric\(\s*name="(\w+)"', text))
        for template in re.findall(r'add_metric\(\s*name=f"\{route\}(\w+)"', text):
            names.update(route + template for route in re.findall(r'cutout_answer\("(\w+)"', text))
    return names


def dashboard() -> dict:
    resource = load_sam()["Resources"]["OperationsDashboard"]
    body = resource["Properties"]["DashboardBody"]["Fn::Sub"]
    return json.loads(body)


def metric_lines(widgets: list[dict]) -> list[list]:
    lines = []
    for widget in widgets:
        previous: list = []
        for line in widget["properties"]["metrics"]:
            names = [part for part in line if not isinstance(part, dict)]
            if names and names[0] == "...":  # CloudWatch's "the line above, with other options"
                names = previous
            lines.append(names)
            previous = names
    return lines


def test_every_metric_in_our_namespace_is_one_the_code_emits():
    emitted = emitted_metric_names()
    assert {"CreditsCharged", "EndpointInstances", "CutoutDelivered", "TasksCreated"} <= emitted
    ours = [line[1] for line in metric_lines(dashboard()["widgets"]) if line[0] == "Alphacut"]
    assert "CreditsCharged" in ours and "EndpointInstances" in ours
    assert set(ours) <= emitted, set(ours) - emitted


def test_every_aws_metric_is_a_real_one_on_an_api_route_and_queue_the_stack_has():
    template = load_sam()
    resources = template["Resources"]
    api_names = {resources[name]["Properties"]["Name"]["Fn::Sub"] for name in ("Api", "RemoveBgApi")}
    routes = {
        (event["Properties"]["Path"], event["Properties"]["Method"].upper())
        for resource in resources.values()
        for event in (resource.get("Properties") or {}).get("Events", {}).values()
        if event.get("Type") == "Api"
    }
    lines = [line for line in metric_lines(dashboard()["widgets"]) if line[0].startswith("AWS/")]
    assert {line[0] for line in lines} == set(AWS_METRICS)
    for line in lines:
        assert line[1] in AWS_METRICS[line[0]], line
        dimensions = dict(zip(line[2::2], line[3::2], strict=True))
        if line[0] == "AWS/ApiGateway":
            assert dimensions["ApiName"] in api_names and dimensions["Stage"] == "${StageName}"
            assert (dimensions["Resource"], dimensions["Method"]) in routes, dimensions
        else:
            assert dimensions == {"QueueName": "${TaskQueue.QueueName}"} and "TaskQueue" in resources


def test_detailed_metrics_are_on_exactly_the_routes_the_dashboard_reads():
    """Each method's detailed metrics are custom metrics billed by the month: on for what the
    dashboard shows, off for every other route of both APIs."""
    resources = load_sam()["Resources"]
    names = {resources[n]["Properties"]["Name"]["Fn::Sub"]: n for n in ("Api", "RemoveBgApi")}
    read = {
        (names[dict(zip(line[2::2], line[3::2], strict=True))["ApiName"]],)
        + (
            dict(zip(line[2::2], line[3::2], strict=True))["Resource"],
            dict(zip(line[2::2], line[3::2], strict=True))["Method"],
        )
        for line in metric_lines(dashboard()["widgets"])
        if line[0] == "AWS/ApiGateway"
    }
    enabled = {
        (api, setting["ResourcePath"].replace("~1", "/")[1:], setting["HttpMethod"])
        for api in ("Api", "RemoveBgApi")
        for setting in resources[api]["Properties"].get("MethodSettings", [])
        if setting.get("MetricsEnabled")
    }
    assert enabled == read and len(read) == 5
