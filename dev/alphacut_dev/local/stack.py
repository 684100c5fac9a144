"""Bring the stack up: moto, the template's resources, warm function workers, the gateway.

Usage::

    with LocalStack(port=3000) as stack:
        print(stack.url, stack.api_key)
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_urlsafe
from typing import Self

import boto3
from alphacut.aws.keys.admin import KeyAdmin
from alphacut.aws.keys.store import KeyStore
from alphacut.aws.ledger.credits import CreditLedger
from alphacut.aws.ledger.plans import Plan

from alphacut_dev.local.account import ACCOUNT, REGION
from alphacut_dev.local.apigateway_integrations import MockIntegration
from alphacut_dev.local.authorizers import LambdaAuthorizers
from alphacut_dev.local.aws_rules import GATEWAY_USER_AGENT, AwsRules
from alphacut_dev.local.dynamodb_capacity import DynamoDBCapacity
from alphacut_dev.local.dynamodb_consistency import (
    EventualReads,
    partition_queries,
    serialise_dynamodb_writes,
)
from alphacut_dev.local.dynamodb_transactions import TransactionConflicts, TransactionTokens
from alphacut_dev.local.endpoint import LocalEndpoint, unpack_model_data, upload_model_data
from alphacut_dev.local.events import ExecutionStatusRule, ScheduleRule
from alphacut_dev.local.expiry import Expiry, ExpiryLoop, lifecycle_rules
from alphacut_dev.local.functions import FunctionInstances
from alphacut_dev.local.gateway import MethodThrottles
from alphacut_dev.local.iam import LocalIam
from alphacut_dev.local.intrinsics import Resolver
from alphacut_dev.local.lambda_event_sources import SqsPoller, mapping_pollers
from alphacut_dev.local.moto_dispatch import RememberedServiceLookup
from alphacut_dev.local.routes import Route, path_pattern
from alphacut_dev.local.waf import DETECTION_SECONDS, WebAcl
from alphacut_dev.local.worker import FunctionSpec
from alphacut_dev.template import ROOT, TEMPLATE, local_code_dir, translate_template

DEFAULT_API_KEY = "alphacut-local-key-0000000000000000"
DEFAULT_KEY_ID = "klocaldefault"
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


PLAN_CACHE_SECONDS = 2.0
THROTTLE_AFTER_SECONDS = 15.0  # a Step Functions call waits this long for a busy worker, then 429


# the template's parameters the local stack deploys with (the rest: their defaults)
LOCAL_PARAMETERS = {
    "SegmentBackend": "sagemaker",
    "SageMakerImageUri": "local",
    "ReserveAsyncConcurrency": "true",
    # Stripe's webhook events come from this machine here (`stripe listen --forward-to`, the tests'
    # signed events); WAF blocks the route from any other address, as it blocks all but Stripe's
    "StripeWebhookAddresses": "127.0.0.1/32",
}


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
    parameters: dict[str, str] = field(default_factory=lambda: dict(LOCAL_PARAMETERS))
    # warm instances per function (logical id -> count; 1 when absent): each holds its own models
    instances: dict[str, int] = field(default_factory=dict)
    # the emulated endpoint's scale from zero (an instance takes minutes on AWS) and scale in
    gpu_warm_up_seconds: float = 20.0
    gpu_idle_seconds: float = 120.0
    # the GPU endpoint's own models (``alphacut models add``'s model data folder): packed and put
    # in a bucket of the account, as an operator does, and deployed with its GpuModelDataUrl
    model_data: Path | None = None
    # how long the emulated WAF takes to see an address go over (or fall back under) a rate-based
    # rule's limit: AWS's usual worst case by default (waf.py)
    waf_detection_seconds: float = DETECTION_SECONDS

    def __post_init__(self):
        self.moto = None
        self.moto_url = ""
        self.workers: dict[str, FunctionInstances] = {}
        self.routes: list[Route] = []
        self.gateway_responses: dict[str, dict] = {}  # REST API logical id -> its declared gateway responses
        self.method_throttles = MethodThrottles()  # the stages' method throttling
        # the template's web ACL: per-address limits on the keyless routes
        self.waf = WebAcl(delay=self.waf_detection_seconds)
        self.authorizers: dict[str, LambdaAuthorizers] = {}  # REST API logical id -> its Lambda authorizers
        # key value -> (read at, (its plan, the key's id))
        self.plans: dict[str, tuple[float, tuple[Plan, str] | None]] = {}
        from alphacut_dev.local.gateway import UsageLimiter

        self.limiter = UsageLimiter()  # tests swap its clock to cross midnight
        self.stage = "prod"
        self.gateway = None
        self.physical: dict[str, str] = {}
        self.model_server = None
        self.model_server_url = ""
        self.model_env: dict[str, str] = {}  # the container's environment (the template's model)
        self._unpacked_model_data: tempfile.TemporaryDirectory[str] | None = None
        self.endpoint: LocalEndpoint | None = None  # the emulated SageMaker endpoint, if any
        self.pollers: list[SqsPoller] = []
        self.rules: list[ExecutionStatusRule | ScheduleRule] = []
        self.expiry: Expiry | None = None  # S3 lifecycle and DynamoDB TTL; tests run it with a moved clock
        self._expiry_loop: ExpiryLoop | None = None
        self._moto_invoke = None
        self._restore_dynamodb_writes: Callable[[], None] | None = None
        self._restore_partition_queries: Callable[[], None] | None = None
        self.aws_rules = AwsRules()  # S3 sequencers, Step Functions' 90-day name window
        # eventually consistent GetItems, off until a test turns them on (stack.eventual_reads.lagging)
        self.eventual_reads = EventualReads()
        # DynamoDB's capacity rules: units metered, partitions' limits, transaction conflicts
        self.capacity = DynamoDBCapacity()
        self.transaction_conflicts = TransactionConflicts()
        self.transaction_tokens = TransactionTokens()  # a retried transaction's token writes once
        self.service_lookup = RememberedServiceLookup()  # moto's own speed, nothing AWS does
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
        self.service_lookup.apply()
        self.moto.start()
        self.moto_url = f"http://{self.host}:{moto_port}"
        os.environ["MOTO_PORT"] = str(moto_port)  # moto's own callbacks (Step Functions) go here
        self._restore_dynamodb_writes = serialise_dynamodb_writes()
        self._restore_partition_queries = partition_queries()
        self.capacity.apply()
        self.transaction_conflicts.apply()
        self.transaction_tokens.apply()  # outside the conflicts: a replay takes no item
        self.aws_rules.apply()
        self.eventual_reads.apply()
        self.iam.apply()
        self._enable_moto_execution()
        if self.model_data is not None:
            self.parameters["GpuModelDataUrl"] = upload_model_data(self.client("s3"), self.model_data)
        # translated with the parameters, as CloudFormation hands them to SAM's transform
        cfn = translate_template(self.template, self.parameters, region=REGION)
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

        self._keep_default_key()
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
        self.eventual_reads.restore()
        self.service_lookup.restore()
        self.transaction_tokens.restore()
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
        if self._unpacked_model_data is not None:  # the instance's /opt/ml/model goes with it
            self._unpacked_model_data.cleanup()
            self._unpacked_model_data = None
        for worker in self.workers.values():
            worker.stop()
        if self.moto is not None:
            self.moto.stop()
            self.moto = None

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
            except requests.RequestException:  # refused, or queued until a worker has its models
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
            if container.get("ModelDataUrl"):  # read as SageMaker does: with the model's role
                self._unpacked_model_data = tempfile.TemporaryDirectory(prefix="alphacut-model-data-")
                folder = Path(self._unpacked_model_data.name)
                unpack_model_data(self.moto_url, self.model_env, container["ModelDataUrl"], folder)
                self.model_env["ALPHACUT_MODEL_DATA_DIR"] = str(folder)
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
    @staticmethod
    def _ip_sets(resources: dict, resolver: Resolver, attributes: dict) -> dict[str, list[str]]:
        """The template's WAF IP sets in force: each one's ARN (given here) -> its addresses."""
        found = {}
        for logical, resource in resources.items():
            if resource["Type"] != "AWS::WAFv2::IPSet":
                continue
            if "Condition" in resource and not resolver.condition(resource["Condition"]):
                continue
            arn = f"arn:aws:wafv2:{REGION}:{ACCOUNT}:regional/ipset/{logical}/local"
            attributes[(logical, "Arn")] = arn
            found[arn] = list(resolver.resolve(resource["Properties"]["Addresses"]))
        return found

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
        acl = resources.get("WebAcl")  # where its condition fails, its rules read with limit 0
        on = acl is not None and ("Condition" not in acl or resolver.condition(acl["Condition"]))
        self.waf.load(acl, on, resolver, self._ip_sets(resources, resolver, attributes))
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

        ses = self.client("sesv2")
        for logical, resource in by_type("AWS::SES::ConfigurationSet"):  # SES's suppression: aws_rules.py
            props = resolver.resolve(resource.get("Properties", {}))
            ses.create_configuration_set(
                ConfigurationSetName=props["Name"],
                **{
                    k: props[k]
                    for k in ("ReputationOptions", "SendingOptions", "SuppressionOptions")
                    if k in props
                },
            )
            refs[logical] = props["Name"]

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
            self.method_throttles.add_stage(
                resource["Properties"]["RestApiId"]["Ref"],
                resolver.resolve(resource["Properties"].get("MethodSettings", [])),
            )
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
            self.authorizers[logical] = LambdaAuthorizers.from_swagger(
                body, lambda uri: self._function_of_uri(resolver.resolve(uri))
            )
            self._routes_from_swagger(body, resolver, logical)
            self.gateway_responses[logical] = resolver.resolve(
                body.get("x-amazon-apigateway-gateway-responses", {})
            )
        # API Gateway matches a path's literal segments before a path parameter (/v1/tasks/recent
        # before /v1/tasks/{task_id}), whatever the order the document lists them in
        self.routes.sort(key=lambda route: route.resource.count("{"))
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

    @contextmanager
    def schedules_held(self) -> Iterator[None]:
        """The scheduled rules skip their ticks meanwhile (a test that tells a call's effects
        from the schedule's: the sweep every minute would otherwise land in its window)."""
        schedules = [rule for rule in self.rules if isinstance(rule, ScheduleRule)]
        for rule in schedules:
            rule.held.set()
        try:
            yield
        finally:
            for rule in schedules:
                rule.held.clear()

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
                # the stack's own address, where mailed sign-up links point (on AWS: the API's
                # own URL, from requestContext.apiId; never the request's Host)
                "ALPHACUT_LOCAL_BASE_URL": self.url,
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

    def _function_of_uri(self, uri: str) -> str | None:
        """The function an integration's or authorizer's URI invokes (its alias or itself)."""
        arn = str(uri).split("/functions/")[-1].removesuffix("/invocations")
        return self.function_arns().get(arn)

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
                    guards = [name for entry in operation.get("security", []) for name in entry]
                    authorizer = next((g for g in guards if g in self.authorizers[api].names()), "")
                    self.routes.append(
                        Route(
                            verb,
                            path,
                            pattern,
                            arn_to_function[function_arn],
                            key_required="api_key" in guards,
                            api=api,
                            binary_media_types=binary,
                            authorizer=authorizer,
                        )
                    )

    # ---- keys and plans -------------------------------------------------------------------------
    def key_store(self) -> KeyStore:
        """The stack's key store (its usage table, its key-hash secret), through moto."""
        secret = self.client("secretsmanager").get_secret_value(SecretId=self.physical["KeyHashSecret"])
        return KeyStore(
            self.physical["UsageTable"], secret["SecretString"].encode(), db=self.client("dynamodb")
        )

    def key_admin(self) -> KeyAdmin:
        """``alphacut keys`` on this stack (credit accounts through the process's own clients)."""
        return KeyAdmin(
            STACK_NAME, self.client("apigateway"), CreditLedger(self.physical["UsageTable"]), self.key_store()
        )

    def _keep_default_key(self) -> None:
        """The quick start's key (``api_key``), on the starter plan, as ``keys migrate`` keeps one."""
        admin = self.key_admin()
        admin.plans()  # the catalogue the authorizer reads
        admin.store.adopt(self.api_key, "local", "starter", DEFAULT_KEY_ID)

    def plan_for_key(self, value: str) -> tuple[Plan, str] | None:
        """The usage plan of an enabled key with this value and the key's id, read from moto's API
        Gateway and kept for ``PLAN_CACHE_SECONDS`` (API Gateway also takes a few seconds to see a
        revoked key). The plan is the service's own type; its quota is a daily one (the template's
        plans' period: a weekly or monthly quota is not applied here)."""
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
                found = (Plan.from_gateway(plans[0], plans[0].get("name", "")), key["id"])
            break
        self.plans[value] = (now, found)
        return found
