"""In-process route tests: canned API Gateway REST proxy events through the real handler
(``make_handler``), as Powertools tests its own resolver, with AWS served by moto in server mode
(one in-process thread, no local stack, no gateway). The models are the built ones (``make setup``).

Usage::

    answer = call(handler, "POST", "/v1/cutout", body=png, headers={"Content-Type": "image/png"})
    answer["statusCode"], answer["headers"], decoded_body(answer)
"""

from __future__ import annotations

import base64
import json
import socket
import uuid
from dataclasses import dataclass

import boto3
import pytest
from alphacut.aws.keys.authorizer import Caller
from alphacut.aws.ledger.plans import Plan
from alphacut.scopes import ALL_SCOPES
from alphacut.settings import ServiceSettings
from alphacut_dev.template import load_sam, table_definition

REGION = "us-east-1"
USAGE_TABLE = "alphacut-api-tests-usage"
RESULTS_BUCKET = "alphacut-api-tests-results"
METERING_QUEUE = "alphacut-api-tests-metering"
DAILY_QUOTA = 50
STARTER = Plan("plan-starter", "starter", DAILY_QUOTA, 100.0, 200)
CREDITS_PLAN = Plan("plan-credits", "credits", None, 1000.0, 1000, credit_based=True)
# key id -> its plan, as the key authorizer hands it to the functions (tests add theirs)
KEY_PLANS: dict[str, Plan] = {}
# key id -> its scopes where not every scope (alphacut.scopes)
KEY_SCOPES: dict[str, tuple[str, ...]] = {}


# key id -> the whole caller, where a test needs an account or a test key (tests add theirs)
KEY_CALLERS: dict[str, Caller] = {}


def authorizer_context(key_id: str) -> dict[str, str]:
    """What API Gateway puts in ``requestContext.authorizer`` for a key the authorizer let in: the
    context's values stringified, and the principal."""
    caller = KEY_CALLERS.get(key_id) or Caller(
        key_id, "tests", KEY_PLANS.get(key_id), KEY_SCOPES.get(key_id, ALL_SCOPES)
    )
    context = caller.to_context()
    values = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in context.items()}
    return {"principalId": key_id, **values}


@dataclass
class LambdaContext:
    """What Powertools' Logger reads from Lambda's context object."""

    function_name: str = "CutoutFunction"
    memory_limit_in_mb: int = 3008
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:CutoutFunction"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"


def rest_event(
    method: str,
    path: str,
    body: bytes | str = b"",
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    key_id: str | None = "key-a",
    resource: str | None = None,
) -> dict:
    """The REST proxy event API Gateway sends for this request (binary bodies base64, as the
    template's binary media types make them), with the key authorizer's context for ``key_id``."""
    raw = body.encode() if isinstance(body, str) else body
    headers = {"Host": "abc.execute-api.us-east-1.amazonaws.com", **(headers or {})}
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource or path,
            "httpMethod": method,
            "path": f"/Prod{path}",
            "stage": "Prod",
            "domainName": headers["Host"],
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "203.0.113.9"},
            **({"authorizer": authorizer_context(key_id)} if key_id else {}),
        },
        "body": base64.b64encode(raw).decode() if raw else None,
        "isBase64Encoded": bool(raw),
    }


def call(handler, method: str, path: str, **kwargs) -> dict:
    return handler(rest_event(method, path, **kwargs), LambdaContext())


def decoded_body(answer: dict) -> bytes:
    body = answer.get("body") or ""
    return base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()


def header(answer: dict, name: str) -> str | None:
    """A header of the proxy answer (Powertools answers a REST event with multiValueHeaders)."""
    for key, values in (answer.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower():
            return values[-1]
    return next((v for k, v in (answer.get("headers") or {}).items() if k.lower() == name.lower()), None)


def answer_json(answer: dict) -> dict:
    return json.loads(decoded_body(answer))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _create_usage_table(dynamodb) -> None:
    """The template's UsageTable keys, so the tests write what the stack's table holds."""
    dynamodb.create_table(**table_definition("UsageTable", USAGE_TABLE))


@pytest.fixture(scope="session")
def moto_aws():
    """moto in server mode on a free port, with the usage table and the results bucket, and a key on
    a plan of ``DAILY_QUOTA`` results a day; the process's environment points boto3 at it."""
    from alphacut_dev.local.dynamodb_consistency import serialise_dynamodb_writes
    from moto.server import ThreadedMotoServer

    # DynamoDB applies each write atomically; moto's threaded server does not (concurrent events
    # of one payment lost the take-backs to the credit's write once): the local stack's lock
    undo = serialise_dynamodb_writes()
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    patch = pytest.MonkeyPatch()
    for name, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "USAGE_TABLE": USAGE_TABLE,
        "RESULTS_BUCKET": RESULTS_BUCKET,
        "METERING_QUEUE_URL": f"http://127.0.0.1:{port}/123456789012/{METERING_QUEUE}",
    }.items():
        patch.setenv(name, value)
    boto3.client("sqs").create_queue(QueueName=METERING_QUEUE)
    _create_usage_table(boto3.client("dynamodb"))
    boto3.client("s3").create_bucket(Bucket=RESULTS_BUCKET)
    KEY_PLANS["tests-key"] = STARTER
    yield "tests-key"
    patch.undo()
    server.stop()
    undo()


@pytest.fixture(scope="session")
def handler(moto_aws):
    """The cutout function's handler, its AWS adapters made against moto (none made before), its
    models loaded and run once at init as the template's ``ALPHACUT_WARM_MODELS`` makes Lambda do
    (before the snapshot), so no call pays for loading them inside the API's 29 s."""
    from alphacut.api import app, services
    from alphacut.aws import clients

    # the module may have been imported before this fixture: the template's Powertools settings,
    # and the function's settings read again from the environment just set
    app.metrics.namespace, app.metrics.service = "Alphacut", "alphacut"
    cutout_environment = load_sam()["Resources"]["CutoutFunction"]["Properties"]["Environment"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ALPHACUT_WARM_MODELS", cutout_environment["Variables"]["ALPHACUT_WARM_MODELS"])
        services.configure(ServiceSettings.from_env())
        clients.client.cache_clear()
        yield app.make_handler()


@pytest.fixture
def key_id(moto_aws) -> str:
    return moto_aws


# the billing tests' fixtures (localstripe, the handler's billing, a fresh credits key), shared by
# test_billing and test_payments: imported last, they need this module's names
from tests.api.billing_fixtures import billing, receiver, store_key, stripe_server  # noqa: F401
