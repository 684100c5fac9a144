"""Bring the stack up: moto, the template's resources, warm function workers, the gateway.

Usage::

    with LocalStack(port=3000) as stack:
        print(stack.url, stack.api_key)
"""

from __future__ import annotations

import copy
import functools
import json
import multiprocessing
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_urlsafe
from typing import Self

import boto3
from alphacut.api.responses import LAMBDA_ANSWER_LIMIT

from alphacut_dev.local.account import ACCOUNT, REGION
from alphacut_dev.local.apigateway_integrations import MockIntegration
from alphacut_dev.local.aws_rules import GATEWAY_USER_AGENT, AwsRules
from alphacut_dev.local.dynamodb_capacity import DynamoDBCapacity
from alphacut_dev.local.dynamodb_transactions import TransactionConflicts
from alphacut_dev.local.endpoint import LocalEndpoint
from alphacut_dev.local.events import ExecutionStatusRule, ScheduleRule
from alphacut_dev.local.expiry import Expiry, ExpiryLoop, lifecycle_rules
from alphacut_dev.local.iam import LocalIam
from alphacut_dev.local.intrinsics import Resolver
from alphacut_dev.local.lambda_event_sources import SqsPoller, mapping_pollers
from alphacut_dev.local.worker import FunctionSpec, serve
from alphacut_dev.template import ROOT, TEMPLATE, local_code_dir, translate_template

DEFAULT_API_KEY = "alphacut-local-key-0000000000000000"
STACK_NAME = "alphacut-local"
STACK_ID = (
    f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK_NAME}/0a1c0ca1-57ac-4e1d-8a1c-0ca157ac4e1d"
)
LAMBDA_OPT = "/opt"


def role_of(arn: dict) -> str:
    """The role's logical id in a ``Fn::GetAtt [Role, Arn]`` the translated template names."""
    target = arn["Fn::GetAtt"]
    return target[0] if isinstance(target, list) else target.split(".", 1)[0]


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
    return re.compile("/" + "/".join(parts) + "/?")  # API Gateway ignores a trailing slash


HANDLED_UNDER_THE_LOCK = (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "batch_get_item",
    "batch_write_item",
    "transact_write_items",
    "transact_get_items",
)


def serialise_dynamodb_writes() -> Callable[[], None]:
    """DynamoDB applies each write to an item atomically (ADD counters, conditional puts); moto's
    threaded server reads, changes and stores the item without a lock, so two concurrent ADDs
    can lose one (seen once: 49 of 50 metered calls). One lock around moto's writes restores
    DynamoDB's guarantee locally; our code is not changed by it. The same lock covers each
    request's handling (moto builds an answer from the item it wrote, and reads items, while
    another request may be changing them: "dictionary changed size during iteration" at a busy
    key's 50 calls a second). Returns what undoes it."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    saved: dict[tuple[object, str], object] = {}
    lock = threading.RLock()  # re-entrant: a transaction's writes may call the others
    for owner, names in (
        (DynamoDBBackend, ("put_item", "update_item", "delete_item", "transact_write_items")),
        (DynamoHandler, HANDLED_UNDER_THE_LOCK),
    ):
        for name in names:
            original = getattr(owner, name)
            saved[(owner, name)] = original
            if owner is DynamoDBBackend and name == "transact_write_items":
                original = journalled_transaction(original)

            def serialised(*args, _original=original, **kwargs):
                with lock:
                    return _original(*args, **kwargs)

            setattr(owner, name, serialised)
    # moto backs up each table a transaction touches with a deep copy, to roll back on failure:
    # the usage table holds a marker per metered call, so every call copied thousands of items
    # (a Schemathesis run grew the process by GBs). The journal above rolls back instead.
    table_copy = getattr(Table, "__deepcopy__", None)
    Table.__deepcopy__ = lambda table, memo: table

    def restore() -> None:
        if table_copy is None:
            del Table.__deepcopy__
        else:
            Table.__deepcopy__ = table_copy
        for (owner, name), original in saved.items():
            setattr(owner, name, original)

    return restore


def partition_queries() -> Callable[[], None]:
    """A Query of a table reads its one partition on DynamoDB; moto looks at every item of the
    table for each one (a table of a million items made each query take seconds). Here moto's
    own query runs on a view of the table that holds the queried partition only; index queries
    are left as they are. Returns what undoes it."""
    from moto.dynamodb.models.table import Table

    original = Table.query

    class Partition:
        def __init__(self, table, hash_key):
            self._table, self._hash_key = table, hash_key

        def __getattr__(self, name):
            return getattr(self._table, name)

        def all_items(self):
            for _ in range(10):  # a write may add to the partition meanwhile (moto reads unlocked)
                try:
                    return list(self._table.items.get(self._hash_key, {}).values())
                except RuntimeError:
                    continue
            return list(self._table.items.get(self._hash_key, {}).values())

    @functools.wraps(original)
    def query(self, hash_key, *args, **kwargs):  # moto's parameter names: callers pass them by name
        index = kwargs.get("index_name") if "index_name" in kwargs else (args[6] if len(args) > 6 else None)
        if index or not self.range_key_attr or hash_key is None:
            return original(self, hash_key, *args, **kwargs)
        return original(Partition(self, hash_key), hash_key, *args, **kwargs)

    Table.query = query

    def restore() -> None:
        Table.query = original

    return restore


def journalled_transaction(transact_write_items):
    """moto's TransactWriteItems, rolled back from a journal of the items it touches (their
    attributes before, or their absence) rather than from deep copies of whole tables."""

    def transact(backend, transact_items, *args, **kwargs):
        journal = []
        for entry in transact_items:
            operation = next(iter(entry.values()))
            table = backend.tables.get(operation.get("TableName"))
            if table is None:
                continue
            attributes = operation.get("Item") or operation.get("Key") or {}
            names = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
            if not all(n in attributes for n in names):
                continue  # moto refuses the request itself: nothing is written
            key = {n: attributes[n] for n in names}
            before = backend.get_item(table.name, key)
            journal.append(
                (table.name, key, copy.deepcopy(before.to_json()["Attributes"]) if before else None)
            )
        try:
            return transact_write_items(backend, transact_items, *args, **kwargs)
        except Exception:
            for table_name, key, attributes in reversed(journal):
                if attributes is None:
                    backend.delete_item(table_name, key)
                else:
                    backend.put_item(table_name, attributes)
            raise

    return transact


@dataclass
class Route:
    method: str  # GET, POST, ... or ANY
    resource: str  # /v1/tasks/{task_id}
    pattern: re.Pattern
    function: str  # logical id
    key_required: bool = True  # the operation's security names the API key
    api: str = "Api"  # the REST API's logical id (its gateway responses apply)
    # a mock integration (a CORS preflight): API Gateway answers it itself, no function
    mock: MockIntegration | None = None
    binary_media_types: tuple[str, ...] = ()  # the API's (apigateway_integrations.is_binary)

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else None


PLAN_CACHE_SECONDS = 2.0
THROTTLE_AFTER_SECONDS = 15.0  # a Step Functions call waits this long for a busy worker, then 429


@dataclass
class UsagePlan:
    plan_id: str
    rate: float
    burst: int
    quota: int | None
    period: str = "DAY"
    key_id: str = ""


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
        self.process = context.Process(
            target=serve, args=(child, self.spec), name=self.spec.name, daemon=True
        )
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
        """('ok', result) | ('error', payload) | ('timeout', None). An answer over Lambda's 6 MB
        is an error, as Lambda makes it (API Gateway then answers 502). Calls take turns; the
        throttling past a function's concurrency is ``FunctionInstances.invoke``'s."""
        with self.lock:
            self.connection.send((event, request_id))
            if not self.connection.poll(self.spec.timeout):
                self.restart()  # Lambda ends a timed-out instance; the next call gets a fresh one
                return "timeout", None
            kind, result = self.connection.recv()
        if kind == "ok" and len(json.dumps(result)) > LAMBDA_ANSWER_LIMIT:
            return "error", {
                "errorType": "Function.ResponseSizeTooLarge",
                "errorMessage": "Response payload size exceeded maximum allowed payload size "
                f"({LAMBDA_ANSWER_LIMIT} bytes).",
            }
        return kind, result

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


class FunctionInstances:
    """A function's warm instances: a call takes whichever is free, as Lambda runs a function on
    as many instances as its concurrency allows (one by default here: each holds its models).
    ``reserved``: its reserved concurrency; a call past it is throttled at once, as Lambda throttles
    (``alphacut_dev.local.lambda_event_sources`` says what that does to a queue's messages)."""

    def __init__(self, spec: FunctionSpec, count: int = 1, reserved: int | None = None):
        self.spec = spec
        self.reserved = reserved
        self.instances = [FunctionWorker(spec) for _ in range(max(1, count))]
        self._free = list(self.instances)
        self._available = threading.Semaphore(len(self.instances))
        self._lock = threading.Lock()
        self._running = 0  # calls in progress or waiting for an instance

    @property
    def process(self):
        return self.instances[0].process

    @property
    def init_ms(self) -> float | None:
        return self.instances[0].init_ms

    def start(self, wait: bool = True) -> None:
        for instance in self.instances:
            instance.start(wait=False)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 120.0) -> None:
        for instance in self.instances:
            instance.wait_ready(timeout)

    def invoke(self, event: dict, request_id: str, wait: float | None = None) -> tuple[str, object]:
        """As ``FunctionWorker.invoke``, on the first instance free within ``wait`` (None: as long
        as it takes); a call that finds none free by then is ('throttled', None), as Lambda
        throttles past a function's concurrency; one past its reserved concurrency is at once."""
        with self._lock:
            if self.reserved is not None and self._running >= self.reserved:
                return "throttled", None
            self._running += 1
        try:
            if not self._available.acquire(timeout=wait):
                return "throttled", None
            with self._lock:
                instance = self._free.pop()
            try:
                return instance.invoke(event, request_id)
            finally:
                with self._lock:
                    self._free.append(instance)
                self._available.release()
        finally:
            with self._lock:
                self._running -= 1

    def restart(self) -> None:
        for instance in self.instances:
            instance.restart()

    def stop(self) -> None:
        for instance in self.instances:
            instance.stop()


@dataclass
class LocalStack:
    port: int = 3000
    host: str = "127.0.0.1"
    api_key: str = DEFAULT_API_KEY
    template: Path = TEMPLATE
    extra_env: dict[str, str] = field(default_factory=dict)
    log: object = print
    # The local stack runs the GPU design, which holds both paths: the asynchronous endpoint (the
    # container's server on the CPU, behind the emulated endpoint) and the CPU while it is cold.
    # It plays an established account, whose limits allow the reservations (a new account's
    # deploy takes the template's defaults: no reservation; `alphacut deploy check` tells which).
    parameters: dict[str, str] = field(
        default_factory=lambda: {
            "SegmentBackend": "sagemaker",
            "SageMakerImageUri": "local",
            "ReserveAsyncConcurrency": "true",
        }
    )
    # warm instances per function (logical id -> count; 1 when absent): each holds its own models
    instances: dict[str, int] = field(default_factory=dict)
    # the emulated endpoint's scale from zero (an instance takes minutes on AWS) and scale in
    gpu_warm_up_seconds: float = 20.0
    gpu_idle_seconds: float = 120.0

    def __post_init__(self):
        self.moto = None
        self.moto_url = ""
        self.workers: dict[str, FunctionInstances] = {}
        self.routes: list[Route] = []
        self.gateway_responses: dict[str, dict] = {}  # REST API logical id -> its declared gateway responses
        self.plans: dict[str, tuple[float, UsagePlan | None]] = {}  # key value -> (read at, plan)
        from alphacut_dev.local.gateway import UsageLimiter

        self.limiter = UsageLimiter()  # tests swap its clock to cross midnight
        self.stage = "prod"
        self.gateway = None
        self.physical: dict[str, str] = {}
        self.model_server = None
        self.model_server_url = ""
        self.model_env: dict[str, str] = {}  # the container's environment (the template's model)
        self.endpoint: LocalEndpoint | None = None  # the emulated SageMaker endpoint, if any
        self.pollers: list[SqsPoller] = []
        self.rules: list[ExecutionStatusRule | ScheduleRule] = []
        self.expiry: Expiry | None = None  # S3 lifecycle and DynamoDB TTL; tests run it with a moved clock
        self._expiry_loop: ExpiryLoop | None = None
        self._moto_invoke = None
        self._restore_dynamodb_writes: Callable[[], None] | None = None
        self._restore_partition_queries: Callable[[], None] | None = None
        self.aws_rules = AwsRules()  # S3 sequencers, Step Functions' 90-day name window
        # DynamoDB's capacity rules: units metered, partitions' limits, transaction conflicts
        self.capacity = DynamoDBCapacity()
        self.transaction_conflicts = TransactionConflicts()
        self.iam = LocalIam(self.client, STACK_NAME)  # the functions' roles (alphacut_dev.local.iam)

    # ---- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def aws_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def _moto_session_args(self) -> dict[str, str]:
        env = self.aws_env()
        return {
            "endpoint_url": self.moto_url,
            "region_name": REGION,
            "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        }

    def client(self, service: str, user_agent_extra: str = ""):
        from botocore.config import Config

        config = Config(user_agent_extra=user_agent_extra) if user_agent_extra else None
        return boto3.client(service, config=config, **self._moto_session_args())

    def resource(self, service: str):
        return boto3.resource(service, **self._moto_session_args())

    def start(self) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log

        moto_port = free_port(self.host)
        self.moto = ThreadedMotoServer(ip_address=self.host, port=moto_port, verbose=False)
        self.moto.start()
        self.moto_url = f"http://{self.host}:{moto_port}"
        os.environ["MOTO_PORT"] = str(moto_port)  # moto's own callbacks (Step Functions) go here
        self._restore_dynamodb_writes = serialise_dynamodb_writes()
        self._restore_partition_queries = partition_queries()
        self.capacity.apply()
        self.transaction_conflicts.apply()
        self.aws_rules.apply()
        self.iam.apply()
        self._enable_moto_execution()
        cfn = translate_template(self.template, region=REGION)
        self._create_resources(cfn)
        started = time.perf_counter()
        for worker in self.workers.values():
            worker.start(wait=False)
        for worker in self.workers.values():
            worker.wait_ready()
        self.log(
            f"functions warm in {time.perf_counter() - started:.1f} s: "
            + ", ".join(f"{n} (init {w.init_ms:.0f} ms)" for n, w in self.workers.items())
        )
        for poller in self.pollers:
            poller.start()
        for rule in self.rules:
            rule.start()
        self._expiry_loop = ExpiryLoop(self.expiry)
        self._expiry_loop.start()
        from alphacut_dev.local.gateway import start_gateway

        self.gateway = start_gateway(self)

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()
        for rule in self.rules:
            rule.stop()
        if self._expiry_loop is not None:
            self._expiry_loop.stop()
            self._expiry_loop = None
        self.aws_rules.restore()
        self.transaction_conflicts.restore()
        self.capacity.restore()
        if self._restore_partition_queries is not None:
            self._restore_partition_queries()
            self._restore_partition_queries = None
        self.iam.undo()
        if self._restore_dynamodb_writes is not None:
            self._restore_dynamodb_writes()
            self._restore_dynamodb_writes = None
        if self._moto_invoke is not None:
            from moto.awslambda.models import LambdaFunction

            LambdaFunction._invoke_lambda = self._moto_invoke
            self._moto_invoke = None
        if self.gateway is not None:
            self.gateway.shutdown()
            self.gateway.server_close()
            self.gateway = None
        if self.endpoint is not None:
            self.endpoint.stop()
            self.endpoint = None
        self.stop_model_server()
        for worker in self.workers.values():
            worker.stop()
        if self.moto is not None:
            self.moto.stop()
            self.moto = None

    # ---- resources from the translated template -----------------------------------------------
    def _enable_moto_execution(self) -> None:
        import requests

        requests.post(
            f"{self.moto_url}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}},
            timeout=10,
        ).raise_for_status()

    # ---- the SageMaker endpoint: the container's server on the CPU --------------------------------
    def start_model_server_on_same_port(self) -> None:
        """Restart the endpoint where the functions already point (failure tests)."""
        self.stop_model_server()
        self.start_model_server(int(self.model_server_url.rsplit(":", 1)[1]))

    def start_model_server(self, port: int | None = None) -> None:
        import subprocess
        import sys

        import requests

        port = port or free_port(self.host)
        self.model_server_url = f"http://{self.host}:{port}"
        self.model_server = subprocess.Popen(
            [sys.executable, str(ROOT / "sagemaker" / "serve.py"), "--host", self.host, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            # this machine's CPU stands in for the endpoint's instance: the template's GPU instance
            # type would make the server refuse to serve without CUDA (/ping 503), as it must on AWS
            env={
                **os.environ,
                **self.aws_env(),
                **self.model_env,
                "ALPHACUT_REQUIRE_GPU": "0",
                **self.extra_env,
            },
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.model_server.poll() is not None:
                raise RuntimeError(f"the model server exited: {self.model_server.stderr.read()[-2000:]}")
            try:
                if requests.get(self.model_server_url + "/ping", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise RuntimeError("the model server did not start")

    def stop_model_server(self, kill: bool = False) -> None:
        """Stop the endpoint's server (``kill``: SIGKILL, no chance to finish what it holds)."""
        if self.model_server is not None:
            if kill:
                self.model_server.kill()
            else:
                self.model_server.terminate()
            try:
                self.model_server.wait(timeout=10)
            except Exception:  # noqa: BLE001
                self.model_server.kill()
            self.model_server = None

    def _start_endpoint(self, by_type, resolver: Resolver) -> None:
        """The template's SageMaker model runs as the container's server here (its environment
        as the template gives it); its endpoint config as the emulated endpoint in front of it."""
        for _, resource in by_type("AWS::SageMaker::Model"):
            container = resolver.resolve(resource["Properties"].get("PrimaryContainer", {}))
            self.model_env = {k: str(v) for k, v in (container.get("Environment") or {}).items()}
            self.model_env.update(self.iam.session_env(role_of(resource["Properties"]["ExecutionRoleArn"])))
        configs = by_type("AWS::SageMaker::EndpointConfig")
        endpoints = by_type("AWS::SageMaker::Endpoint")
        if not configs or not endpoints:
            return
        self.start_model_server()
        config = {
            "AsyncInferenceConfig": resolver.resolve(configs[0][1]["Properties"].get("AsyncInferenceConfig"))
        }
        self.endpoint = LocalEndpoint(
            self.client,
            resolver.resolve({"Fn::GetAtt": [endpoints[0][0], "EndpointName"]}),
            config.get("AsyncInferenceConfig") or {},
            warm_up_seconds=self.gpu_warm_up_seconds,
            idle_seconds=self.gpu_idle_seconds,
            host=self.host,
        )
        self.endpoint.start(self.model_server_url)

    # ---- resources from the translated template -----------------------------------------------
    def _create_resources(self, cfn: dict) -> None:
        resources = cfn["Resources"]
        parameters = {name: str(spec.get("Default", "")) for name, spec in cfn.get("Parameters", {}).items()}
        parameters.update(self.parameters)
        refs = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": STACK_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
            **parameters,
        }
        attributes: dict[tuple[str, str], str] = {}
        resolver = Resolver(refs, attributes, cfn.get("Conditions", {}), cfn.get("Mappings", {}))
        resources = {
            k: v for k, v in resources.items() if "Condition" not in v or resolver.condition(v["Condition"])
        }
        by_type = lambda kind: [(k, v) for k, v in resources.items() if v["Type"] == kind]

        for logical, resource in by_type("AWS::Lambda::LayerVersion"):
            refs[logical] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{logical}:1"
        for logical, resource in by_type("AWS::Lambda::Function"):
            refs[logical] = f"{STACK_NAME}-{logical}"
            attributes[(logical, "Arn")] = (
                f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK_NAME}-{logical}"
            )
        for logical, resource in by_type(
            "AWS::Lambda::Alias"
        ):  # SnapStart's alias: here, the function itself
            refs[logical] = attributes[(resource["Properties"]["FunctionName"]["Ref"], "Arn")]
        for logical, resource in by_type("AWS::SageMaker::Endpoint"):  # Ref: the ARN, as CloudFormation's
            attributes[(logical, "EndpointName")] = f"{STACK_NAME}-{logical}"
            refs[logical] = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{STACK_NAME}-{logical}".lower()

        s3 = self.client("s3")
        buckets = []
        for logical, resource in by_type("AWS::S3::Bucket"):
            props = resource.get("Properties", {})
            name = (
                resolver.resolve(props["BucketName"])
                if "BucketName" in props
                else f"{STACK_NAME}-{logical.lower()}"
            )
            s3.create_bucket(Bucket=name)
            refs[logical] = name
            attributes[(logical, "Arn")] = f"arn:aws:s3:::{name}"
            buckets.append((name, props))

        sqs = self.client("sqs")
        queues = by_type("AWS::SQS::Queue")
        # dead-letter queues first: the others name them in their redrive policy
        queues.sort(key=lambda item: "RedrivePolicy" in item[1].get("Properties", {}))
        for logical, resource in queues:
            props = resource.get("Properties", {})
            name = f"{STACK_NAME}-{logical}"
            attrs = {"VisibilityTimeout": str(props.get("VisibilityTimeout", 30))}
            if "RedrivePolicy" in props:
                attrs["RedrivePolicy"] = json.dumps(resolver.resolve(props["RedrivePolicy"]))
            url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
            refs[logical] = url
            attributes[(logical, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
            attributes[(logical, "QueueName")] = name
            attributes[(logical, "QueueUrl")] = url

        sns = self.client("sns")
        for logical, resource in by_type("AWS::SNS::Topic"):
            props = resolver.resolve(resource.get("Properties", {}))
            refs[logical] = sns.create_topic(Name=props.get("TopicName") or f"{STACK_NAME}-{logical}")[
                "TopicArn"
            ]
        for logical, resource in by_type("AWS::SNS::Subscription"):  # moto's SNS delivers to its SQS
            props = resolver.resolve(resource["Properties"])
            raw = str(props.get("RawMessageDelivery", "false")).lower() == "true"
            sns.subscribe(
                TopicArn=props["TopicArn"],
                Protocol=props["Protocol"],
                Endpoint=props["Endpoint"],
                Attributes={"RawMessageDelivery": "true"} if raw else {},
            )

        secrets = self.client("secretsmanager")
        for logical, resource in by_type("AWS::SecretsManager::Secret"):  # generated, as CloudFormation does
            created = secrets.create_secret(Name=f"{STACK_NAME}-{logical}", SecretString=token_urlsafe(36))
            refs[logical] = created["ARN"]

        dynamodb = self.client("dynamodb")
        ttl_attributes: dict[str, str] = {}
        for logical, resource in by_type("AWS::DynamoDB::Table"):
            props = resolver.resolve(resource["Properties"])
            name = f"{STACK_NAME}-{logical}"
            table = {
                "TableName": name,
                "AttributeDefinitions": props["AttributeDefinitions"],
                "KeySchema": props["KeySchema"],
                "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
            }
            if props.get("GlobalSecondaryIndexes"):
                table["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
            dynamodb.create_table(**table)
            ttl = props.get("TimeToLiveSpecification") or {}
            if ttl.get("Enabled"):
                ttl_attributes[name] = ttl["AttributeName"]
            refs[logical] = name
            attributes[(logical, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"

        self.expiry = Expiry(
            self.client,
            [
                rule
                for name, props in buckets
                for rule in lifecycle_rules(name, resolver.resolve(props.get("LifecycleConfiguration")))
            ],
            ttl_attributes,
        )
        for name, props in buckets:  # S3 -> SQS notifications (moto delivers them)
            notification = resolver.resolve(props.get("NotificationConfiguration"))
            if notification:
                s3.put_bucket_notification_configuration(
                    Bucket=name,
                    NotificationConfiguration={
                        "QueueConfigurations": [
                            {
                                "QueueArn": q["Queue"],
                                "Events": [q["Event"]],
                                **(
                                    {"Filter": {"Key": {"FilterRules": q["Filter"]["S3Key"]["Rules"]}}}
                                    if "Filter" in q
                                    else {}
                                ),
                            }
                            for q in notification.get("QueueConfigurations", [])
                        ]
                    },
                )

        self._create_moto_functions(by_type("AWS::Lambda::Function"))
        sfn = self.client("stepfunctions")
        for logical, resource in by_type("AWS::StepFunctions::StateMachine"):
            props = resource["Properties"]
            definition = resolver.resolve(props["DefinitionString"])
            substitutions = resolver.resolve(props.get("DefinitionSubstitutions", {}))
            for key, value in substitutions.items():
                definition = definition.replace("${" + key + "}", str(value))
            arn = sfn.create_state_machine(
                name=f"{STACK_NAME}-{logical}",
                definition=definition,
                roleArn=f"arn:aws:iam::{ACCOUNT}:role/{STACK_NAME}-local",
            )["stateMachineArn"]
            refs[logical] = arn
            attributes[(logical, "Name")] = f"{STACK_NAME}-{logical}"
            attributes[(logical, "Arn")] = arn

        apigateway = self.client("apigateway")
        for logical, resource in by_type("AWS::ApiGateway::RestApi"):
            refs[logical] = apigateway.create_rest_api(name=f"{STACK_NAME}-{logical}")["id"]
        for logical, resource in by_type("AWS::ApiGateway::Stage"):
            self.stage = resolver.resolve(resource["Properties"]["StageName"])
            refs[logical] = self.stage
        for logical, resource in by_type("AWS::ApiGateway::UsagePlan"):
            props = resolver.resolve(resource["Properties"])
            quota = props.get("Quota")
            plan = apigateway.create_usage_plan(
                name=props.get("UsagePlanName") or f"{STACK_NAME}-{logical}",
                description=props.get("Description", ""),
                throttle={
                    "rateLimit": float(props["Throttle"]["RateLimit"]),
                    "burstLimit": int(props["Throttle"]["BurstLimit"]),
                },
                apiStages=[{"apiId": s["ApiId"], "stage": s["Stage"]} for s in props.get("ApiStages", [])],
                tags={tag["Key"]: str(tag["Value"]) for tag in props.get("Tags", [])},
                **({"quota": {"limit": int(quota["Limit"]), "period": quota["Period"]}} if quota else {}),
            )
            refs[logical] = plan["id"]
        for logical, resource in by_type("AWS::ApiGateway::ApiKey"):
            key = apigateway.create_api_key(name=f"{STACK_NAME}-{logical}", value=self.api_key, enabled=True)
            refs[logical] = key["id"]
        for logical, resource in by_type("AWS::ApiGateway::UsagePlanKey"):
            props = resolver.resolve(resource["Properties"])
            apigateway.create_usage_plan_key(
                usagePlanId=props["UsagePlanId"], keyId=props["KeyId"], keyType=props["KeyType"]
            )
        # each function's role, made once what its policies name exists; the processes get sessions
        self.iam.create_roles(resources, resolver)
        self._start_endpoint(by_type, resolver)
        self.physical = dict(refs)

        for logical, resource in by_type("AWS::Lambda::Function"):
            reserved = resolver.resolve(resource["Properties"].get("ReservedConcurrentExecutions"))
            self.workers[logical] = FunctionInstances(
                self._function_spec(logical, resource, resources, resolver),
                self.instances.get(logical, 1),
                None if reserved is None else int(reserved),
            )
        for logical, resource in by_type("AWS::ApiGateway::RestApi"):
            body = resource["Properties"].get("Body", {})
            self._routes_from_swagger(body, resolver, logical)
            self.gateway_responses[logical] = resolver.resolve(
                body.get("x-amazon-apigateway-gateway-responses", {})
            )
        for logical, resource in by_type("AWS::Lambda::EventSourceMapping"):
            props = resolver.resolve(resource["Properties"])
            function = next(name for name in self.workers if refs[name] == props["FunctionName"])
            queue = next(k for k, _ in queues if attributes[(k, "Arn")] == props["EventSourceArn"])
            self.pollers += mapping_pollers(self, refs[queue], props["EventSourceArn"], function, props)
        for logical, resource in by_type("AWS::Events::Rule"):  # EventBridge rules -> function targets
            props = resolver.resolve(resource["Properties"])
            for target in props.get("Targets", []):
                function = self.function_arns()[target["Arn"]]
                if "ScheduleExpression" in props:
                    self.rules.append(ScheduleRule(self, props["ScheduleExpression"], function, logical))
                else:
                    self.rules.append(ExecutionStatusRule(self, props["EventPattern"], function))

    def set_function_env(self, function: str, **variables: str) -> None:
        """Change a function's environment, as a stack update with a new parameter value does:
        its warm instance is replaced by one started with the new values."""
        worker = self.workers[function]
        worker.spec.environment.update(variables)
        worker.restart()

    def function_arns(self) -> dict[str, str]:
        """Function ARN (as the translated template names it) -> logical id."""
        return {
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK_NAME}-{name}": name for name in self.workers
        }

    def _create_moto_functions(self, functions) -> None:
        """Register the functions in moto's Lambda (Step Functions invokes them there) and route
        moto's invocation to the warm workers instead of Docker."""
        import io
        import zipfile

        from moto.awslambda.models import LambdaFunction

        iam = self.client("iam")
        role = iam.create_role(
            RoleName=f"{STACK_NAME}-local",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr("app.py", "# runs in the local stack's worker, not here\n")
        lambda_client = self.client("lambda")
        for logical, resource in functions:
            lambda_client.create_function(
                FunctionName=f"{STACK_NAME}-{logical}",
                Runtime="python3.12",
                Role=role,
                Handler=resource["Properties"]["Handler"],
                Code={"ZipFile": archive.getvalue()},
                Timeout=int(resource["Properties"].get("Timeout", 3)),
            )
        stack = self
        self._moto_invoke = LambdaFunction._invoke_lambda

        def invoke_worker(function, event=None):
            logical = function.function_name.removeprefix(f"{STACK_NAME}-")
            worker = stack.workers.get(logical)
            if worker is None:
                return stack._moto_invoke(function, event)
            payload = event if isinstance(event, dict) else json.loads(event or "{}")
            # Step Functions' calls wait a moment for the one instance, then are throttled (429):
            # the state machine's Retry handles that as on AWS, instead of threads queueing here
            # past their step's timeout
            kind, result = worker.invoke(payload, None, wait=THROTTLE_AFTER_SECONDS)
            if kind == "throttled":
                from moto.core.exceptions import JsonRESTError

                error = JsonRESTError("TooManyRequestsException", "Rate Exceeded.")
                error.code = 429
                raise error
            if kind == "ok":
                return json.dumps(result), False, ""
            if kind == "timeout":
                return (
                    json.dumps(
                        {
                            "errorType": "Sandbox.Timedout",
                            "errorMessage": f"Task timed out after {worker.spec.timeout} seconds",
                        }
                    ),
                    True,
                    "",
                )
            return json.dumps(result), True, ""

        LambdaFunction._invoke_lambda = invoke_worker

    def _function_spec(
        self, logical: str, resource: dict, resources: dict, resolver: Resolver
    ) -> FunctionSpec:
        props = resource["Properties"]
        python_paths, mounted = [], None
        for layer in props.get("Layers", []):
            layer_id = layer.get("Ref") if isinstance(layer, dict) else None
            content = (
                local_code_dir(resources[layer_id]["Properties"]["Content"])
                if layer_id in resources
                else None
            )
            if content is None:
                continue
            if (content / "requirements.txt").exists():
                python_paths.append(content)  # a Python layer: importable, as /opt/python is
            else:
                mounted = content  # a data layer: what Lambda unpacks at /opt
        environment = {
            k: str(v) for k, v in resolver.resolve(props.get("Environment", {}).get("Variables", {})).items()
        }
        if mounted is not None:
            environment = {
                k: (
                    str(mounted) + v[len(LAMBDA_OPT) :]
                    if v == LAMBDA_OPT or v.startswith(LAMBDA_OPT + "/")
                    else v
                )
                for k, v in environment.items()
            }
        environment.update(self.aws_env())
        environment.update(self.iam.session_env(role_of(props["Role"])))  # the function's own role
        if self.endpoint is not None:  # the functions' SageMaker clients reach the emulated endpoint
            environment["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = self.endpoint.url
            environment["AWS_ENDPOINT_URL_SAGEMAKER"] = self.endpoint.url
        environment.update(
            {
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "PYTHONUNBUFFERED": "1",
            }
        )
        environment.update(self.extra_env)
        return FunctionSpec(
            name=logical,
            code_dir=local_code_dir(props["Code"]),
            handler=props["Handler"],
            timeout=int(resolver.resolve(props.get("Timeout", 3))),
            memory=int(resolver.resolve(props.get("MemorySize", 128))),
            environment=environment,
            python_paths=python_paths,
        )

    def _routes_from_swagger(self, body: dict, resolver: Resolver, api: str) -> None:
        arn_to_function = self.function_arns()
        binary = tuple(body.get("x-amazon-apigateway-binary-media-types", []))
        for path, methods in body.get("paths", {}).items():
            pattern = path_pattern(path)
            for method, operation in methods.items():
                integration = operation.get("x-amazon-apigateway-integration", {})
                uri = resolver.resolve(integration.get("uri", ""))
                function_arn = uri.split("/functions/")[-1].removesuffix("/invocations")
                if integration.get("type") == "mock":
                    mock = MockIntegration.from_swagger(integration, binary, resolver.resolve)
                    self.routes.append(Route(method.upper(), path, pattern, "", False, api, mock, binary))
                elif function_arn in arn_to_function:
                    verb = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
                    self.routes.append(
                        Route(
                            verb,
                            path,
                            pattern,
                            arn_to_function[function_arn],
                            key_required=bool(operation.get("security", [{"api_key": []}])),
                            api=api,
                            binary_media_types=binary,
                        )
                    )

    # ---- keys and plans -------------------------------------------------------------------------
    def plan_for_key(self, value: str) -> UsagePlan | None:
        """The usage plan of an enabled key with this value, read from moto's API Gateway and kept
        for ``PLAN_CACHE_SECONDS`` (API Gateway also takes a few seconds to see a revoked key)."""
        now = time.monotonic()
        cached = self.plans.get(value)
        if cached is not None and now - cached[0] < PLAN_CACHE_SECONDS:
            return cached[1]
        found = None
        apigateway = self.client("apigateway", GATEWAY_USER_AGENT)  # API Gateway's data plane, not its API
        for key in apigateway.get_api_keys(includeValues=True).get("items", []):
            if key.get("value") != value or not key.get("enabled", True):
                continue
            plans = apigateway.get_usage_plans(keyId=key["id"]).get("items", [])
            if plans:
                plan = plans[0]
                quota = plan.get("quota") or {}
                found = UsagePlan(
                    plan["id"],
                    float(plan.get("throttle", {}).get("rateLimit", 10000)),
                    int(plan.get("throttle", {}).get("burstLimit", 5000)),
                    int(quota["limit"]) if quota.get("limit") else None,
                    quota.get("period", "DAY"),
                    key["id"],
                )
            break
        self.plans[value] = (now, found)
        return found
