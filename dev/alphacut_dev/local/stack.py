"""Bring the stack up: moto, the template's resources, warm function workers, the gateway.

Usage::

    with LocalStack(port=3000) as stack:
        print(stack.url, stack.api_key)
"""

from __future__ import annotations

import multiprocessing
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from alphacut_dev.local.intrinsics import Resolver
from alphacut_dev.local.worker import FunctionSpec, serve
from alphacut_dev.template import ROOT, TEMPLATE, local_code_dir, translate_template

DEFAULT_API_KEY = "alphacut-local-key-0000000000000000"
REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK_NAME = "alphacut-local"
LAMBDA_OPT = "/opt"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def path_pattern(resource: str) -> re.Pattern:
    """/v1/tasks/{task_id} -> a regex with a named group per path parameter."""
    parts = []
    for segment in resource.strip("/").split("/"):
        parameter = re.fullmatch(r"\{(\w+)\+?\}", segment)
        parts.append(f"(?P<{parameter.group(1)}>[^/]+)" if parameter else re.escape(segment))
    return re.compile("/" + "/".join(parts))


@dataclass
class Route:
    method: str                  # GET, POST, ... or ANY
    resource: str                # /v1/tasks/{task_id}
    pattern: re.Pattern
    function: str                # logical id

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else None


@dataclass
class UsagePlan:
    plan_id: str
    rate: float
    burst: int
    quota: int | None
    period: str = "DAY"


class FunctionWorker:
    """A warm worker process for one function; one event at a time, like one Lambda instance."""

    def __init__(self, spec: FunctionSpec):
        self.spec = spec
        self.lock = threading.Lock()
        self.process = None
        self.connection = None
        self.init_ms = None

    def start(self, wait: bool = True) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, self.spec), name=self.spec.name, daemon=True)
        self.process.start()
        self.connection = parent
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 120.0) -> None:
        if not self.connection.poll(timeout):
            raise RuntimeError(f"{self.spec.name} did not start within {timeout:.0f} s")
        kind, detail = self.connection.recv()
        if kind != "ready":
            raise RuntimeError(f"{self.spec.name} failed to initialise: {detail}")
        self.init_ms = detail

    def invoke(self, event: dict, request_id: str) -> tuple[str, object]:
        """('ok', result) | ('error', payload) | ('timeout', None)."""
        with self.lock:
            self.connection.send((event, request_id))
            if not self.connection.poll(self.spec.timeout):
                self.restart()  # Lambda ends a timed-out instance; the next call gets a fresh one
                return "timeout", None
            return self.connection.recv()

    def restart(self) -> None:
        self.stop()
        self.start(wait=True)

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            self.connection.send(None)
        except (OSError, BrokenPipeError):
            pass
        self.process.join(timeout=3)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=3)
        self.process = None


@dataclass
class LocalStack:
    port: int = 3000
    host: str = "127.0.0.1"
    api_key: str = DEFAULT_API_KEY
    template: Path = TEMPLATE
    extra_env: dict[str, str] = field(default_factory=dict)
    log: object = print

    def __post_init__(self):
        self.moto = None
        self.moto_url = ""
        self.workers: dict[str, FunctionWorker] = {}
        self.routes: list[Route] = []
        self.plans: dict[str, UsagePlan] = {}  # api key value -> plan (refreshed from moto)
        self.stage = "prod"
        self.gateway = None
        self.physical: dict[str, str] = {}

    # ---- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def aws_env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.moto_url, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}

    def client(self, service: str):
        env = self.aws_env()
        return boto3.client(service, endpoint_url=self.moto_url, region_name=REGION,
                            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])

    def start(self) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log

        moto_port = free_port(self.host)
        self.moto = ThreadedMotoServer(ip_address=self.host, port=moto_port, verbose=False)
        self.moto.start()
        self.moto_url = f"http://{self.host}:{moto_port}"
        os.environ["MOTO_PORT"] = str(moto_port)  # moto's own callbacks (Step Functions) go here
        cfn = translate_template(self.template, region=REGION)
        self._create_resources(cfn)
        started = time.perf_counter()
        for worker in self.workers.values():
            worker.start(wait=False)
        for worker in self.workers.values():
            worker.wait_ready()
        self.log(f"functions warm in {time.perf_counter() - started:.1f} s: "
                 + ", ".join(f"{n} (init {w.init_ms:.0f} ms)" for n, w in self.workers.items()))
        from alphacut_dev.local.gateway import start_gateway

        self.gateway = start_gateway(self)

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.shutdown()
            self.gateway.server_close()
            self.gateway = None
        for worker in self.workers.values():
            worker.stop()
        if self.moto is not None:
            self.moto.stop()
            self.moto = None

    # ---- resources from the translated template -----------------------------------------------
    def _create_resources(self, cfn: dict) -> None:
        resources = cfn["Resources"]
        parameters = {name: str(spec.get("Default", "")) for name, spec in cfn.get("Parameters", {}).items()}
        refs = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::StackName": STACK_NAME,
                "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", **parameters}
        attributes: dict[tuple[str, str], str] = {}
        resolver = Resolver(refs, attributes)
        by_type = lambda kind: [(k, v) for k, v in resources.items() if v["Type"] == kind]  # noqa: E731

        s3 = self.client("s3")
        for logical, resource in by_type("AWS::S3::Bucket"):
            props = resource.get("Properties", {})
            name = resolver.resolve(props["BucketName"]) if "BucketName" in props else f"{STACK_NAME}-{logical.lower()}"
            s3.create_bucket(Bucket=name)
            refs[logical] = name
            attributes[(logical, "Arn")] = f"arn:aws:s3:::{name}"

        for logical, resource in by_type("AWS::Lambda::LayerVersion"):
            refs[logical] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{logical}:1"
        for logical, resource in by_type("AWS::Lambda::Function"):
            refs[logical] = f"{STACK_NAME}-{logical}"
            attributes[(logical, "Arn")] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK_NAME}-{logical}"

        apigateway = self.client("apigateway")
        for logical, resource in by_type("AWS::ApiGateway::RestApi"):
            refs[logical] = apigateway.create_rest_api(name=f"{STACK_NAME}-{logical}")["id"]
        for logical, resource in by_type("AWS::ApiGateway::Stage"):
            self.stage = resolver.resolve(resource["Properties"]["StageName"])
            refs[logical] = self.stage
        for logical, resource in by_type("AWS::ApiGateway::UsagePlan"):
            props = resolver.resolve(resource["Properties"])
            plan = apigateway.create_usage_plan(
                name=f"{STACK_NAME}-{logical}", description=props.get("Description", ""),
                throttle={"rateLimit": float(props["Throttle"]["RateLimit"]),
                          "burstLimit": int(props["Throttle"]["BurstLimit"])},
                quota={"limit": int(props["Quota"]["Limit"]), "period": props["Quota"]["Period"]},
                apiStages=[{"apiId": s["ApiId"], "stage": s["Stage"]} for s in props.get("ApiStages", [])])
            refs[logical] = plan["id"]
        for logical, resource in by_type("AWS::ApiGateway::ApiKey"):
            key = apigateway.create_api_key(name=f"{STACK_NAME}-{logical}", value=self.api_key, enabled=True)
            refs[logical] = key["id"]
        for logical, resource in by_type("AWS::ApiGateway::UsagePlanKey"):
            props = resolver.resolve(resource["Properties"])
            apigateway.create_usage_plan_key(usagePlanId=props["UsagePlanId"], keyId=props["KeyId"],
                                             keyType=props["KeyType"])
        self.physical = dict(refs)

        for logical, resource in by_type("AWS::Lambda::Function"):
            self.workers[logical] = FunctionWorker(self._function_spec(logical, resource, resources, resolver))
        for logical, resource in by_type("AWS::ApiGateway::RestApi"):
            self._routes_from_swagger(resource["Properties"].get("Body", {}), resolver)

    def _function_spec(self, logical: str, resource: dict, resources: dict, resolver: Resolver) -> FunctionSpec:
        props = resource["Properties"]
        python_paths, mounted = [], None
        for layer in props.get("Layers", []):
            layer_id = layer.get("Ref") if isinstance(layer, dict) else None
            content = local_code_dir(resources[layer_id]["Properties"]["Content"]) if layer_id in resources else None
            if content is None:
                continue
            if (content / "requirements.txt").exists():
                python_paths.append(content)  # a Python layer: importable, as /opt/python is
            else:
                mounted = content             # a data layer: what Lambda unpacks at /opt
        environment = {k: str(v) for k, v in resolver.resolve(props.get("Environment", {}).get("Variables", {})).items()}
        if mounted is not None:
            environment = {k: (str(mounted) + v[len(LAMBDA_OPT):] if v == LAMBDA_OPT or v.startswith(LAMBDA_OPT + "/") else v)
                           for k, v in environment.items()}
        environment.update(self.aws_env())
        environment.update({"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
                            "PYTHONUNBUFFERED": "1"})
        environment.update(self.extra_env)
        return FunctionSpec(name=logical, code_dir=local_code_dir(props["Code"]), handler=props["Handler"],
                            timeout=int(props.get("Timeout", 3)), memory=int(props.get("MemorySize", 128)),
                            environment=environment, python_paths=python_paths)

    def _routes_from_swagger(self, body: dict, resolver: Resolver) -> None:
        arn_to_function = {f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK_NAME}-{name}": name
                           for name in self.workers}
        for path, methods in body.get("paths", {}).items():
            pattern = path_pattern(path)
            for method, operation in methods.items():
                integration = operation.get("x-amazon-apigateway-integration", {})
                uri = resolver.resolve(integration.get("uri", ""))
                function_arn = uri.split("/functions/")[-1].removesuffix("/invocations")
                if function_arn in arn_to_function:
                    verb = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
                    self.routes.append(Route(verb, path, pattern, arn_to_function[function_arn]))

    # ---- keys and plans -------------------------------------------------------------------------
    def plan_for_key(self, value: str) -> UsagePlan | None:
        """The usage plan of an enabled key with this value, read from moto's API Gateway (cached)."""
        if value in self.plans:
            return self.plans[value]
        apigateway = self.client("apigateway")
        for key in apigateway.get_api_keys(includeValues=True).get("items", []):
            if key.get("value") != value or not key.get("enabled", True):
                continue
            plans = apigateway.get_usage_plans(keyId=key["id"]).get("items", [])
            if not plans:
                return None
            plan = plans[0]
            quota = plan.get("quota") or {}
            self.plans[value] = UsagePlan(plan["id"], float(plan.get("throttle", {}).get("rateLimit", 10000)),
                                          int(plan.get("throttle", {}).get("burstLimit", 5000)),
                                          int(quota["limit"]) if quota.get("limit") else None,
                                          quota.get("period", "DAY"))
            return self.plans[value]
        return None
