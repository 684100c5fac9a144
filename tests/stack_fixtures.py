"""The local stack, started once for the integration and e2e tests, plus a small image server.

Two API keys in the service's key store: the quick start's default key (the starter plan: 2
requests/s, burst 4) for the rate tests, and a key on a roomy plan made as an admin would, so that
the other tests are not throttled by each other.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from alphacut.aws.keys.admin import KeyAdmin
from alphacut.aws.ledger.credits import CreditLedger
from alphacut.pricing import millicredits
from alphacut_dev.local.stack import LOCAL_PARAMETERS, STACK_NAME, LocalStack, free_port

from tests.model_graphs import first_channel_graph, operator_copy, run_alphacut

IMAGE_HOST = "127.0.0.2"  # loopback, but not 127.0.0.1: the only host the test stack may fetch from
ROOMY_KEY = "alphacut-tests-roomy-key-000000000000"
CREDIT_PLAN = "bulk-credits"  # credit-based (its billing tag), as the template's credits plan


class ImageServer:
    """Serves files, redirects and errors for image_url tests."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.posts: list[tuple[str, dict]] = []  # callbacks received: (path, JSON body)
        self.raw_posts: list[tuple[str, dict, bytes]] = []  # (path, headers, body as sent)
        self.gets: list[str] = []  # every path fetched, in order (what the service downloaded)
        self.port = free_port(IMAGE_HOST)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/slow/"):  # a receiver that takes a second to answer
                    time.sleep(1)
                server.raw_posts.append((self.path, dict(self.headers.items()), body))
                server.posts.append((self.path, json.loads(body or b"{}")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                server.gets.append(self.path)
                if self.path.startswith("/drip/"):  # a header that never ends, a byte each 0.5 s
                    self._drip()
                    return
                if self.path.startswith("/redirect?to="):
                    self.send_response(302)
                    self.send_header("Location", self.path.split("=", 1)[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                # a query names the same file, as on any web server (tests tag their fetches so)
                data = server.files.get(self.path.split("?", 1)[0].lstrip("/"))
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the fetcher stops reading at its byte limit: that is the point of huge.jpg

            def _drip(self):
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Drip: ")
                for _ in range(240):  # two minutes at most: past any deadline of the service's
                    try:
                        self.wfile.write(b"x")
                        self.wfile.flush()
                    except OSError:
                        return  # the fetcher hung up
                    time.sleep(0.5)

        self.httpd = ThreadingHTTPServer((IMAGE_HOST, self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://{IMAGE_HOST}:{self.port}/{name}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def photo(eval_dir) -> bytes:
    return min((eval_dir / "person" / "images").iterdir()).read_bytes()


@pytest.fixture(scope="session")
def image_server(photo):
    server = ImageServer(
        {
            "photo.jpg": photo,
            "huge.jpg": b"\xff\xd8" + b"\x00" * (16 * 1024 * 1024),
            "broken.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,  # a picture's signature and nothing
        }
    )
    yield server
    server.close()


@pytest.fixture(scope="session")
def operator_models(tmp_path_factory) -> tuple[Path, Path]:
    """The built models layer as an operator's copy (the model folders linked, the manifest
    copied) with two models added by ``alphacut models add``, the command an operator runs: a
    graph with BiRefNet's signature (96 x 64, BGR, ImageNet normalisation, one logits map) as
    ``tiny`` (into the layer: it runs everywhere) and as ``tinygpu`` (``--gpu-only``: the GPU
    endpoint's model data, which the stack packs and deploys as its GpuModelDataUrl).
    (models folder, model data folder)."""
    root = tmp_path_factory.mktemp("operator")
    models, data, graph = operator_copy(root / "models"), root / "model-data", root / "graph.onnx"
    graph.write_bytes(first_channel_graph(96, 64))
    for name, flags in (("tiny", []), ("tinygpu", ["--gpu-only"])):
        added = run_alphacut(
            models, "models", "add", name, graph, "--size", "96x64", "--colour", "BGR",
            "--licence", "MIT", "--model-data", data, *flags,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
    return models, data


@pytest.fixture(scope="session")
def stack(image_server, operator_models, tmp_path_factory):
    models, model_data = operator_models
    local = LocalStack(
        port=free_port(),
        # the dispatcher reads the endpoint's instance count at every task: tests pin it
        extra_env={
            "IMAGE_URL_ALLOWED_HOSTS": IMAGE_HOST,
            "ENDPOINT_STATUS_CACHE_SECONDS": "0",
            "ALPHACUT_MODELS_DIR": str(models),  # the layer with the operator's models
            # one onnxruntime thread per core, as the template leaves it, whatever this worker's
            # own setting (tests/conftest.py's pytest_runtest_setup)
            "ALPHACUT_THREADS": "0",
            # mail written to files, as `make serve` does (the sign-up and notice tests read it)
            "ALPHACUT_MAIL_DIR": str(tmp_path_factory.mktemp("mail")),
        },
        log=lambda line: None,
        gpu_warm_up_seconds=3.0,
        # WAF's detection delay (30 s, AWS's usual worst case): short, so that the WAF test waits
        # it out and a burst of a dozen links still fits within it
        waf_detection_seconds=3.0,
        # the suite's reference engine (tests/conftest.py), not the template's int8 default: the
        # routes' answers are compared with the in-process pipeline's, byte for byte
        # the keyless routes' stage throttle well above the tests' own bursts (the browser's page
        # loads, Schemathesis' two workers); tests/unit/test_local_gateway_plans.py shows it applied
        parameters={
            **LOCAL_PARAMETERS,
            "ModelEngine": os.environ["ALPHACUT_ENGINE"],
            "KeyCacheSeconds": "2",
            "TestResultsPerDay": "3",  # an account's test keys: 3 results a day (tests/e2e/test_accounts.py)
            "KeylessRateLimit": "500",
            "KeylessBurstLimit": "1000",
        },
        model_data=model_data,
        # two warm instances of the function behind /v1/cutout, remove.bg's and the vendors'
        # routes, as Lambda runs concurrent calls on instances of their own: the tests' concurrent
        # calls (Schemathesis' two workers, bursts, parallel paid calls) meet as they would there
        instances={"CutoutFunction": 2},
    )
    local.start()
    apigateway = local.client("apigateway")
    apigateway.create_usage_plan(
        name=f"{STACK_NAME}-tests-roomy",  # one of the stack's plans: named <stack>-<plan>
        throttle={"rateLimit": 1000.0, "burstLimit": 1000},
        quota={"limit": 100000, "period": "DAY"},
    )
    # the roomy key, kept with a known value as `keys migrate` keeps one; the sweep's plan sync
    # (each minute) writes the new plan into the catalogue the authorizer reads: it runs now
    local.key_store().adopt(ROOMY_KEY, "tests-roomy", "tests-roomy", "ktestsroomy")
    kind, synced = local.workers["SweepFunction"].invoke({"source": "aws.events"}, None)
    assert kind == "ok", synced
    yield local
    refused = list(local.iam.refused)  # every call a function's role did not allow, in any test
    local.stop()
    assert refused == [], f"calls the functions' roles do not allow (template.yaml's grants): {refused}"


def cli_env(stack) -> dict[str, str]:
    """The environment `alphacut keys` and `alphacut usage` need against the local stack: its moto,
    its usage table and its key-hash secret (the stack's outputs on AWS)."""
    return {
        **os.environ,
        **stack.aws_env(),
        "USAGE_TABLE": stack.physical["UsageTable"],
        "KEY_HASH_SECRET_ARN": stack.physical["KeyHashSecret"],
        "CALLBACK_SECRET_ARN": stack.physical["CallbackSigningSecret"],
        "KEY_CALLBACK_SECRET_ARN": stack.physical["KeyCallbackSecret"],
    }


def client_as(stack, function: str, service: str):
    """A boto3 client signed as ``function``'s role, with the session the stack gave it."""
    import boto3

    env = stack.workers[function].spec.environment
    return boto3.client(
        service,
        endpoint_url=stack.moto_url,
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
    )


class Api:
    def __init__(self, base: str, key: str | None, key_id: str = ""):
        self.base, self.key, self.key_id = base, key, key_id

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.key is not None:
            headers.setdefault("x-api-key", self.key)
        return requests.request(method, self.base + path, headers=headers, timeout=120, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)


def request_from(
    source: str, method: str, url: str, body: bytes | None = None, headers=None
) -> tuple[int, bytes]:
    """One HTTP request from the loopback address ``source`` (127.0.0.x: another client address to
    the gateway, as API Gateway's sourceIp and WAF see it): the status and the body."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=30, source_address=(source, 0)
    )
    try:
        connection.request(method, parts.path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


@pytest.fixture(scope="session")
def small_photo() -> bytes:
    """A blue box on light grey, 160x120: a quick cutout for metering and credit tests."""
    from PIL import Image

    from tests.conftest import image_bytes

    picture = Image.new("RGB", (160, 120), (240, 240, 240))
    picture.paste((30, 90, 200), (40, 30, 120, 90))
    return image_bytes(picture, "JPEG")


@pytest.fixture(scope="session")
def api(stack) -> Api:
    return Api(stack.url, ROOMY_KEY)


@pytest.fixture(scope="session")
def default_key_api(stack) -> Api:
    return Api(stack.url, stack.api_key)


@pytest.fixture(scope="session")
def admin(stack) -> KeyAdmin:
    """The keys admin on the local stack, with two extra plans made as an operator would: bulk (no
    throttling in the way of concurrency tests) and tiny (a quota of 3 a day)."""
    apigateway = stack.client("apigateway")
    apigateway.create_usage_plan(
        name=f"{STACK_NAME}-bulk",
        throttle={"rateLimit": 1000.0, "burstLimit": 1000},
        quota={"limit": 100000, "period": "DAY"},
    )
    apigateway.create_usage_plan(
        name=f"{STACK_NAME}-tiny",
        throttle={"rateLimit": 100.0, "burstLimit": 100},
        quota={"limit": 3, "period": "DAY"},
    )
    apigateway.create_usage_plan(  # the template's credits plan, without its throttle in the way
        name=f"{STACK_NAME}-{CREDIT_PLAN}",
        throttle={"rateLimit": 1000.0, "burstLimit": 1000},
        tags={"billing": "credits"},
    )
    os.environ.update(stack.aws_env())  # the ledger's boto3 clients reach the stack's moto
    return KeyAdmin(STACK_NAME, apigateway, CreditLedger(stack.physical["UsageTable"]), stack.key_store())


def new_key(admin: KeyAdmin, stack, plan: str = "bulk") -> Api:
    """A fresh key (its own usage counts) on one of the admin fixture's plans."""
    key = admin.create(f"test-{plan}-{time.time_ns()}", plan)
    return Api(stack.url, key.value, key.id)


def credit_key(admin: KeyAdmin, stack, credits: str) -> Api:
    """A fresh key on the credit-based plan, topped up with ``credits`` (e.g. "37", "0.5")."""
    api = new_key(admin, stack, CREDIT_PLAN)
    if Decimal(credits):
        admin.credit(api.key_id, millicredits(credits), note="tests")
    return api


@contextmanager
def dynamodb_fault(method: str, when: Callable[[str], bool], times: int = 1):
    """Make moto's DynamoDB (in this process) refuse ``times`` calls of ``method`` (put_item,
    update_item, transact_write_items...) whose arguments, as text, ``when`` picks. The refusal
    is an AccessDeniedException, which no SDK retries: the caller's own retry logic is tested.
    Yields the list of refused calls."""
    from moto.dynamodb.exceptions import DynamodbException
    from moto.dynamodb.models import DynamoDBBackend

    original = getattr(DynamoDBBackend, method)
    refused: list[str] = []

    def faulty(self, *args, **kwargs):
        text = f"{args} {kwargs}"
        if len(refused) < times and when(text):
            refused.append(text)
            raise DynamodbException("AccessDeniedException", "injected fault: this write is refused")
        return original(self, *args, **kwargs)

    setattr(DynamoDBBackend, method, faulty)
    try:
        yield refused
    finally:
        setattr(DynamoDBBackend, method, original)


def pinned_path(stack, path: str):
    """The path the next tasks take, by the endpoint's instances (the CPU-while-cold rule): cpu,
    none of them; gpu, one held."""
    stack.endpoint.pin(0 if path == "cpu" else 1)


def with_path(step: dict, path: str) -> dict:
    """A step input as the dispatcher makes it for ``path`` (tests that start executions)."""
    return {**step, "path": path}


@pytest.fixture(scope="session")
def stripe_on_stack(stack):
    """localstripe (tests/localstripe_server.py) as the stack's Stripe: the billing functions and the
    page's function pointed at it (a stack update with new parameters), its signed webhooks sent to
    the stack's own /v1/billing/stripe through the gateway."""
    from tests.localstripe_server import (
        PUBLISHABLE_KEY,
        SECRET_KEY,
        WEBHOOK_SECRET,
        LocalStripe,
        WebhookReceiver,
    )

    copies = WebhookReceiver()  # localstripe sends every event here too: the exact bytes, to replay
    with LocalStripe() as server:
        settings = {
            "ALPHACUT_STRIPE_API_BASE": server.api,
            "ALPHACUT_STRIPE_SECRET_KEY": SECRET_KEY,
            "ALPHACUT_STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
            "ALPHACUT_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "ALPHACUT_STRIPE_JS_URL": f"{server.api}/js.stripe.com/v3/",
        }
        for function in ("BillingFunction", "LowBalanceFunction", "TasksFunction"):
            stack.set_function_env(function, **settings)
        server.send_webhooks_to(f"{stack.url}/v1/billing/stripe", WEBHOOK_SECRET)
        server.send_webhooks_to(copies.url, WEBHOOK_SECRET, hook="copies")
        server.settings, server.copies = settings, copies
        yield server
    copies.close()
