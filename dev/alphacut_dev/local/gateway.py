"""The local API Gateway: HTTP in, REST proxy event to the function's worker, proxy answer out.

It behaves as API Gateway does for the template's REST APIs, served on one port (on AWS each has its own
host): a route's Lambda authorizer applied as AWS applies it (``alphacut_dev.local.authorizers``: the
x-api-key header required, the answer cached per value, its policy, its context in the event, the
API's gateway responses for its refusals); for a route that names API Gateway's API key instead,
the key's usage plan (429 ``Too Many Requests`` with Retry-After over the rate and burst, 429
``Limit Exceeded`` saying when the quota resets; off with ``ALPHACUT_LOCAL_GATEWAY_PLANS=off``);
bodies base64-encoded for binary media types, 413
for events over Lambda's 6 MB payload, 502 when the function fails (an answer over Lambda's 6 MB
included), 504 at its integration timeout of 29 s (the function runs on), and 403 ``Missing
Authentication Token`` for a path no route has. The other APIs (remove.bg's) answer a bad key,
the rate and the quota with their gateway responses as the template declares them.
"""

from __future__ import annotations

import base64
import json
import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from alphacut.api.request import declared_length
from alphacut.api.responses import LAMBDA_ANSWER_LIMIT
from alphacut.aws.ledger.plans import Plan
from alphacut.deadlines import GATEWAY_TIMEOUT_SECONDS
from alphacut.errors import ImageTooLarge, InvalidOption

from alphacut_dev.local.account import ACCOUNT, REGION
from alphacut_dev.local.apigateway_integrations import is_binary, static_headers
from alphacut_dev.local.authorizers import method_arn

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
MAX_EVENT_BYTES = LAMBDA_ANSWER_LIMIT  # Lambda's synchronous invocation payload limit, both ways


# API Gateway's account-level throttle (per region), which a plan without its own applies
ACCOUNT_RATE_LIMIT, ACCOUNT_BURST_LIMIT = 10000.0, 5000


class TokenBucket:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.capacity, self.clock = rate, max(1, burst), clock
        self.tokens = float(self.capacity)
        self.updated = clock()
        self.lock = threading.Lock()

    def take(self) -> float:
        """0 when a request may pass, else the seconds until one may."""
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


class UsageLimiter:
    """Per API key: a token bucket for rate/burst and a per-UTC-day counter for the quota."""

    def __init__(self, clock=time.time):
        self.clock = clock
        self.buckets: dict[str, TokenBucket] = {}
        self.counts: dict[tuple[str, str], int] = {}
        self.lock = threading.Lock()

    def check(self, key: str, plan: Plan) -> Refusal | None:
        """None when the request may pass, else what API Gateway refuses it for (THROTTLED,
        QUOTA_EXCEEDED), for ``render_refusal`` to answer as the route's API does. A plan without
        a throttle gets the account's (API Gateway's default: 10,000 a second, bursts of 5,000)."""
        rate = plan.rate_limit if plan.rate_limit is not None else ACCOUNT_RATE_LIMIT
        burst = plan.burst if plan.burst is not None else ACCOUNT_BURST_LIMIT
        with self.lock:
            bucket = self.buckets.get(key)
            if bucket is None or (bucket.rate, bucket.capacity) != (rate, max(1, burst)):
                bucket = self.buckets[key] = TokenBucket(rate, burst)  # a new plan applies at once
        wait = bucket.take()
        if wait:
            return Refusal("THROTTLED", retry_after=max(1, math.ceil(wait)))
        if plan.quota is not None:
            now = self.clock()
            day = time.strftime("%Y-%m-%d", time.gmtime(now))
            with self.lock:
                used = self.counts.get((key, day), 0)
                if used >= plan.quota:
                    reset = (int(now) // 86400 + 1) * 86400
                    return Refusal(
                        "QUOTA_EXCEEDED", retry_after=reset - int(now), quota=plan.quota, reset=reset
                    )
                self.counts[(key, day)] = used + 1
        return None


class MethodThrottles:
    """A stage's method throttling (its MethodSettings' ThrottlingRateLimit and ThrottlingBurstLimit):
    one token bucket per method, all callers together, before any authorizer or function."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.buckets: dict[tuple[str, str, str], TokenBucket] = {}

    def add_stage(self, api: str, method_settings: list[dict]) -> None:
        """``method_settings`` as the Stage resource holds them (``/~1v1~1results~1{token}``)."""
        for setting in method_settings:
            rate = setting.get("ThrottlingRateLimit")
            if rate is None:
                continue
            path = "/" + setting["ResourcePath"].removeprefix("/").replace("~1", "/").lstrip("/")
            burst = int(setting.get("ThrottlingBurstLimit", ACCOUNT_BURST_LIMIT))
            key = (api, setting["HttpMethod"].upper(), path)
            self.buckets[key] = TokenBucket(float(rate), burst, self.clock)

    def wait(self, api: str, method: str, resource: str) -> float:
        """0 when a call may pass, else the seconds until one may."""
        bucket = self.buckets.get((api, method.upper(), resource))
        return bucket.take() if bucket is not None else 0.0


@dataclass
class Refusal:
    """API Gateway's own answer before any function runs: its gateway response type and details."""

    kind: str  # INVALID_API_KEY, THROTTLED, QUOTA_EXCEEDED
    retry_after: int = 0
    quota: int = 0
    reset: int = 0
    key_given: bool = True


NATIVE_API = "Api"


def plans_applied() -> bool:
    """Whether the gateway applies API keys' usage plans (``ALPHACUT_LOCAL_GATEWAY_PLANS=off``: a
    test that shows the service's own limits hold whatever API Gateway lets by)."""
    return os.environ.get("ALPHACUT_LOCAL_GATEWAY_PLANS", "on") != "off"


def render_refusal(
    refusal: Refusal, declared: dict | None, api: str, request_id: str
) -> tuple[int, bytes, dict[str, str]]:
    """An API key route's refusal as the route's API gives it: the native API's (with the details
    API Gateway's variables would carry), or the template's gateway response as declared for the
    other APIs; the declared headers (the allowed origin, Retry-After) on both."""
    headers = declared_headers(declared)
    if api != NATIVE_API and declared is not None:
        body = (declared.get("responseTemplates") or {}).get("application/json", "")
        return int(declared.get("statusCode", 400)), fill_context(body, request_id), headers
    if refusal.kind == "INVALID_API_KEY":
        return 401, json.dumps(unauthorized_body(refusal.key_given, request_id)).encode(), headers
    headers["Retry-After"] = str(refusal.retry_after)
    if refusal.kind == "THROTTLED":
        return 429, json.dumps(throttled_body(request_id)).encode(), headers
    return 429, json.dumps(quota_body(refusal.quota, refusal.reset, request_id)).encode(), headers


# API Gateway's own answers for a Lambda authorizer's refusals, where the template declares none
AUTHORIZER_REFUSALS = {
    "UNAUTHORIZED": (401, {"message": "Unauthorized"}),
    "ACCESS_DENIED": (
        403,
        {"Message": "User is not authorized to access this resource with an explicit deny"},
    ),
    "AUTHORIZER_FAILURE": (500, {"message": None}),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, {"message": None}),
}


def render_gateway_response(kind: str, declared: dict, request_id: str) -> tuple[int, bytes, dict[str, str]]:
    """A gateway response of ``kind`` as the API declares it (its status, template and headers),
    or as API Gateway answers it by default (DEFAULT_4XX / DEFAULT_5XX's headers apply then)."""
    status, body = AUTHORIZER_REFUSALS[kind]
    own = declared.get(kind)
    fallback = declared.get("DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX")
    response = own or fallback or {}
    template = (response.get("responseTemplates") or {}).get("application/json")
    return (
        int(own.get("statusCode", status)) if own else status,
        fill_context(template, request_id) if template else json.dumps(body).encode(),
        declared_headers(response),
    )


def declared_headers(declared: dict | None) -> dict[str, str]:
    """A gateway response's headers as the template declares them."""
    return static_headers((declared or {}).get("responseParameters") or {}, "gatewayresponse.header.")


def fill_context(template: str, request_id: str) -> bytes:
    """A gateway response template with the one variable the template uses filled in."""
    return template.replace("$context.requestId", request_id).encode()


def unauthorized_body(key_given: bool, request_id: str) -> dict:
    problem = "is not a valid, enabled API key" if key_given else "is missing: send your API key in x-api-key"
    return {
        "message": "Unauthorized",
        "request_id": request_id,
        "error": {"code": "invalid_api_key", "message": f"x-api-key {problem}", "field": "x-api-key"},
    }


def throttled_body(request_id: str) -> dict:
    return {
        "message": "Too Many Requests",
        "request_id": request_id,
        "error": {
            "code": "rate_limited",
            "message": "over this API key's request rate: retry after Retry-After seconds",
        },
    }


def quota_body(quota: int, reset: int, request_id: str) -> dict:
    resets_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset))
    return {
        "message": "Limit Exceeded",
        "request_id": request_id,
        "error": {
            "code": "quota_exceeded",
            "message": f"this API key's daily quota of {quota} calls is spent; it resets at {resets_at} "
            "(00:00 UTC)",
            "limit": quota,
            "resets_at": resets_at,
        },
    }


def invoke_within(worker, event: dict, request_id: str) -> tuple[str, object]:
    """The function's answer, or ('timeout', None) at API Gateway's integration timeout (29 s):
    the gateway answers 504 then, while the function runs on to its own end, as on AWS."""
    answer: list[tuple[str, object]] = []
    call = threading.Thread(target=lambda: answer.append(worker.invoke(event, request_id)), daemon=True)
    call.start()
    call.join(GATEWAY_TIMEOUT_SECONDS)
    return answer[0] if answer else ("timeout", None)


def start_gateway(stack) -> ThreadingHTTPServer:
    limiter = stack.limiter

    def api_of(path: str) -> str:
        """The REST API a path no route matched would reach (on AWS each API has its own host):
        the one whose routes share its first segment."""
        first = path.strip("/").split("/")[0]
        return next((r.api for r in stack.routes if r.resource.strip("/").split("/")[0] == first), NATIVE_API)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "alphacut-local-gateway"

        def log_message(self, fmt, *args):  # one line per request, on the stack's log
            # a request line too long to parse (414) has no command or path yet: said, not a crash
            command, path = getattr(self, "command", None) or "-", getattr(self, "path", None) or "-"
            stack.log(f"{command} {path} -> {args[1] if len(args) > 1 else ''}")

        def _send(
            self,
            status: int,
            body: bytes,
            headers: dict[str, str] | None = None,
            content_type: str = "application/json",
        ) -> None:
            self.send_response(status)
            sent = {k.lower() for k in (headers or {})}
            if "content-type" not in sent:
                self.send_header("Content-Type", content_type)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-amzn-RequestId", self._request_id)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _message(self, status: int, message: str, kind: str, api: str = NATIVE_API) -> None:
            """API Gateway's own answer (``kind``: its gateway response type), with the headers
            the template declares for that type, or for DEFAULT_4XX / DEFAULT_5XX."""
            declared = stack.gateway_responses.get(api, {})
            default = "DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX"
            headers = declared_headers(declared.get(kind) or declared.get(default))
            self._send(status, json.dumps({"message": message}).encode(), headers)

        def __getattr__(self, name: str):
            # every method reaches the routes: API Gateway answers one no route has with 403 JSON,
            # where http.server would answer 501 HTML
            if name.startswith("do_"):
                return self._handle
            raise AttributeError(name)

        def _handle(self) -> None:
            self._request_id = str(uuid.uuid4())
            parts = urlsplit(self.path)
            path = parts.path
            if path.startswith(f"/{stack.stage}/"):
                path = path[len(stack.stage) + 1 :]
            # WAF before anything of API Gateway's (its size check, its routes, throttles, authorizers)
            blocked = stack.waf.answer(self.client_address[0], parts.path, self.headers)
            if blocked is not None:
                self.close_connection = True  # the body is never read
                self._send(blocked.status, blocked.body.encode(), dict(blocked.headers))
                return
            try:
                length = declared_length(self.headers.get("Content-Length"), MAX_REQUEST_BYTES)
            except ImageTooLarge:
                self._message(413, "Request Too Long", "REQUEST_TOO_LARGE", api_of(path))
                return
            except InvalidOption:
                self.close_connection = True
                self._message(
                    400, "Bad Request: Content-Length must be a whole number of bytes", "BAD_REQUEST_BODY"
                )
                return
            body = self.rfile.read(length) if length else b""
            for route in stack.routes:
                path_parameters = route.match(self.command, path)
                if path_parameters is not None:
                    break
            else:
                missing = "MISSING_AUTHENTICATION_TOKEN"
                self._message(403, "Missing Authentication Token", missing, api_of(path))
                return
            if stack.method_throttles.wait(route.api, self.command, route.resource):
                self._message(429, "Too Many Requests", "THROTTLED", route.api)
                return
            if route.mock is not None:  # a CORS preflight: API Gateway answers it itself, or fails
                if route.mock.fails(self.headers.get("Content-Type")):
                    self._message(500, "Internal server error", "API_CONFIGURATION_ERROR", route.api)
                else:
                    self._send(200, b"{}", route.mock.headers)
                return
            api_key = self.headers.get("x-api-key", "")
            key_id = ""
            event = self._event(route, path, parts.query, path_parameters, body, "", "")
            if route.authorizer:
                arn = method_arn(
                    REGION, ACCOUNT, stack.physical.get(route.api, "local"), stack.stage, self.command, path
                )
                outcome = stack.authorizers[route.api].check(
                    route.authorizer,
                    dict(self.headers.items()),
                    arn,
                    event,
                    lambda function, request: invoke_within(
                        stack.workers[function], request, self._request_id
                    ),
                )
                if outcome.refusal:
                    declared = stack.gateway_responses.get(route.api, {})
                    self._send(*render_gateway_response(outcome.refusal, declared, self._request_id))
                    return
                event["requestContext"]["authorizer"] = outcome.context
            if route.key_required:  # API Gateway's API keys, where a route asks
                found = stack.plan_for_key(api_key) if api_key else None
                if found is None:
                    refused = Refusal("INVALID_API_KEY", key_given=bool(api_key))
                else:
                    plan, key_id = found
                    refused = limiter.check(api_key, plan) if plans_applied() else None
                if refused:
                    declared = stack.gateway_responses.get(route.api, {}).get(refused.kind)
                    self._send(*render_refusal(refused, declared, route.api, self._request_id))
                    return
                event["requestContext"]["identity"].update({"apiKey": api_key, "apiKeyId": key_id})
            encoded = json.dumps(event)
            if len(encoded) > MAX_EVENT_BYTES:
                self._message(413, "Request Too Long", "REQUEST_TOO_LARGE", route.api)
                return
            kind, result = invoke_within(stack.workers[route.function], event, self._request_id)
            if kind == "timeout":
                self._message(504, "Endpoint request timed out", "INTEGRATION_TIMEOUT", route.api)
                return
            if kind != "ok" or not isinstance(result, dict) or "statusCode" not in result:
                stack.log(f"{route.function} failed: {result}")
                self._message(502, "Internal server error", "INTEGRATION_FAILURE", route.api)
                return
            headers = dict(result.get("headers") or {})
            for name, values in (result.get("multiValueHeaders") or {}).items():
                headers[name] = ", ".join(values)
            payload = result.get("body") or ""
            data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode("utf-8")
            self._send(int(result["statusCode"]), data, headers)

        def _event(self, route, path, query, path_parameters, body, api_key, api_key_id) -> dict:
            headers: dict[str, str] = {}
            multi_headers: dict[str, list[str]] = {}
            for name, value in self.headers.items():
                headers[name] = value
                multi_headers.setdefault(name, []).append(value)
            # API Gateway adds these (HTTPS there; plain HTTP here)
            forwarded = {"X-Forwarded-Proto": "http", "X-Forwarded-Port": str(stack.port)}
            for name, value in forwarded.items():
                headers[name] = value
                multi_headers[name] = [value]
            multi_query = {k: v for k, v in parse_qs(query, keep_blank_values=True).items()}
            content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
            binary = bool(body) and is_binary(content_type, route.binary_media_types)
            now = time.time()
            return {
                "resource": route.resource,
                "path": path,
                "httpMethod": self.command,
                "headers": headers or None,
                "multiValueHeaders": multi_headers or None,
                "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
                "multiValueQueryStringParameters": multi_query or None,
                "pathParameters": path_parameters or None,
                "stageVariables": None,
                "requestContext": {
                    "resourcePath": route.resource,
                    "httpMethod": self.command,
                    "path": f"/{stack.stage}{path}",
                    "stage": stack.stage,
                    "requestId": self._request_id,
                    "accountId": "123456789012",
                    "domainName": self.headers.get("Host", f"{stack.host}:{stack.port}"),
                    "apiId": stack.physical.get(route.api, "local"),
                    "protocol": "HTTP/1.1",
                    "requestTimeEpoch": int(now * 1000),
                    "identity": {
                        "apiKey": api_key or None,
                        "apiKeyId": api_key_id or None,
                        "sourceIp": self.client_address[0],
                        "userAgent": self.headers.get("User-Agent", ""),
                    },
                },
                "body": (
                    base64.b64encode(body).decode("ascii") if binary else body.decode("utf-8", "replace")
                )
                if body
                else None,
                "isBase64Encoded": binary,
            }

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    class Server(ThreadingHTTPServer):
        # socketserver's default backlog is 5: a burst of clients (50 at once in the metering
        # tests) would see connections reset, which API Gateway never does
        request_queue_size = 128
        daemon_threads = True

    server = Server((stack.host, stack.port), Handler)
    threading.Thread(target=server.serve_forever, name="gateway", daemon=True).start()
    return server
