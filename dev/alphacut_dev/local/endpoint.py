"""The SageMaker endpoint as AWS runs it, in front of the container's server on this machine.

One HTTP server answers what the functions call (``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` and
``AWS_ENDPOINT_URL_SAGEMAKER`` point here):

- ``InvokeEndpointAsync`` (``POST /endpoints/<name>/async-invocations``): the request joins the
  endpoint's queue (202 with its output and failure locations); a worker reads the input from
  moto's S3, posts it to the container's ``/invocations``, writes the answer (or the container's
  error answer) to the template's S3 output (or failure) path and publishes the notification to
  moto's SNS success (or error) topic, which delivers it to the subscribed SQS queue. Requests
  wait while there is no instance; one that waits past its ``RequestTTLSeconds`` fails as
  expired, one the container holds past ``InvocationTimeoutSeconds`` fails as timed out (both on
  the endpoint's clock, which tests may hold and move on: ``held_clock``, ``advance``); a
  container that does not answer the connection leaves the request queued (SageMaker replaces an
  unhealthy instance; the request is not lost).
- The instance count: 0 until a request arrives, then 1 after ``warm_up_seconds`` (scale from
  zero), back to 0 after ``idle_seconds`` with nothing queued or running (scale in). ``pin(n)``
  holds it at n (tests choose the CPU-while-cold path with 0, the endpoint path with 1).
- ``InvokeEndpoint`` (``POST /endpoints/<name>/invocations``): the real-time API with its 6 MB
  request limit (413 above it), failures wrapped as ``ModelError`` (424) as AWS does.
- ``DescribeEndpoint`` (the control plane's JSON API): status and ``CurrentInstanceCount``.

Usage::

    endpoint = LocalEndpoint(stack.client, "alphacut-local-SegmentEndpoint", async_config)
    endpoint.start(container_url="http://127.0.0.1:8080")
    endpoint.url                                  # where the functions' SageMaker clients point
"""

from __future__ import annotations

import json
import tarfile
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from alphacut.aws.objects import s3_location

from alphacut_dev.local.account import ACCOUNT, REGION

REALTIME_PAYLOAD_LIMIT = 6 * 1024 * 1024  # InvokeEndpoint's request limit (AWS: 6 MB)
MODEL_DATA_BUCKET = "alphacut-local-model-data"  # the operator's artifact bucket, in the account
MAX_INVOCATION_SECONDS = 3600  # InvocationTimeoutSeconds' most (AWS: 1-3600)
CLOCK_TICK_SECONDS = 0.2  # how often the endpoint looks at its clock (queue, scaling, timeouts)


def upload_model_data(s3, folder: Path) -> str:
    """An operator's ``alphacut models pack`` and ``aws s3 cp``: the folder packed and put in a
    bucket of the account; the S3 URI the stack deploys with (GpuModelDataUrl)."""
    from alphacut.models.intake import pack_model_data

    with tempfile.TemporaryDirectory() as scratch:
        packed = pack_model_data(folder, Path(scratch) / "model.tar.gz")
        s3.create_bucket(Bucket=MODEL_DATA_BUCKET)
        s3.upload_file(str(packed), MODEL_DATA_BUCKET, "alphacut/model.tar.gz")
    return f"s3://{MODEL_DATA_BUCKET}/alphacut/model.tar.gz"


def unpack_model_data(moto_url: str, role_env: dict[str, str], url: str, folder: Path) -> None:
    """The model's data as SageMaker gives it to the container: read from S3 with the model's
    execution role (its policy must allow it), unpacked into ``folder`` (/opt/ml/model on AWS) as
    it streams in (a BiRefNet archive is close to a gigabyte: never held in memory whole)."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name=REGION,
        aws_access_key_id=role_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=role_env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=role_env.get("AWS_SESSION_TOKEN"),
    )
    bucket, key = s3_location(url)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    with tarfile.open(fileobj=body, mode="r|gz") as archive:
        archive.extractall(folder, filter="data")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class AsyncRequest:
    inference_id: str
    input_location: str
    output_location: str
    failure_location: str
    attributes: str
    content_type: str
    expires_at: float  # the endpoint's clock (``LocalEndpoint.now``): RequestTTLSeconds after receipt
    invocation_timeout: float
    received: str = field(default_factory=now_iso)


class LocalEndpoint:
    def __init__(
        self,
        client,
        name: str,
        async_config: dict[str, Any],
        warm_up_seconds: float = 20.0,
        idle_seconds: float = 120.0,
        host: str = "127.0.0.1",
    ):
        self.client, self.name, self.host = client, name, host
        output = async_config.get("OutputConfig", {})
        self.output_path = output.get("S3OutputPath", "").rstrip("/")
        self.failure_path = output.get("S3FailurePath", "").rstrip("/")
        notification = output.get("NotificationConfig", {})
        self.success_topic = notification.get("SuccessTopic", "")
        self.error_topic = notification.get("ErrorTopic", "")
        self.per_instance = int(
            async_config.get("ClientConfig", {}).get("MaxConcurrentInvocationsPerInstance", 1)
        )
        self.warm_up_seconds, self.idle_seconds = warm_up_seconds, idle_seconds
        self.container_url = ""
        self.instances = 0
        self.pinned: int | None = None
        self.queue: deque[AsyncRequest] = deque()
        self.running = 0
        self.woken_at: float | None = None  # when the instance being started was asked for
        # the endpoint's clock: monotonic time plus what tests moved it on (``advance``), so a
        # request's RequestTTLSeconds (AWS's least is 60 s) passes without a minute's wait
        self.clock_offset = 0.0
        self.frozen_at: float | None = None  # monotonic time at which the clock was held (``held_clock``)
        self.idle_since = self.now()
        self.lock = threading.Condition()
        self.stopping = threading.Event()
        self.server: ThreadingHTTPServer | None = None
        self.threads: list[threading.Thread] = []
        self.notifications = 0  # published, for tests

    # ---- lifecycle ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://{self.host}:{self.server.server_address[1]}"

    def start(self, container_url: str) -> None:
        self.container_url = container_url
        self.server = ThreadingHTTPServer((self.host, 0), self._handler())
        self.server.daemon_threads = True
        self.threads = [threading.Thread(target=self.server.serve_forever, name="endpoint-http", daemon=True)]
        self.threads.append(threading.Thread(target=self._scaler, name="endpoint-scaler", daemon=True))
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            self.lock.notify_all()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        for thread in self.threads:
            thread.join(timeout=5)

    def pin(self, instances: int | None) -> None:
        """Hold the instance count at ``instances`` (None: scale by the backlog again)."""
        with self.lock:
            self.pinned = instances
            if instances is not None:
                self.instances = instances
            self.lock.notify_all()

    def now(self) -> float:
        return (time.monotonic() if self.frozen_at is None else self.frozen_at) + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Move the endpoint's clock on: its queue's TTLs and its scaling see that much more time."""
        with self.lock:
            self.clock_offset += seconds
            self.lock.notify_all()

    @contextmanager
    def held_clock(self) -> Iterator[None]:
        """The endpoint's clock stands still but for ``advance``, so a test can put it an exact
        time short of a TTL and look, however long the look takes on a busy machine; it runs on
        from there afterwards (no jump)."""
        with self.lock:
            self.frozen_at = time.monotonic()
        try:
            yield
        finally:
            with self.lock:
                self.clock_offset -= time.monotonic() - self.frozen_at
                self.frozen_at = None
                self.lock.notify_all()

    # ---- scaling and work -----------------------------------------------------------------------
    def _scaler(self) -> None:
        while not self.stopping.is_set():
            with self.lock:
                self._scale(self.now())
                self._expire(self.now())
                while self.queue and self.running < self.instances * self.per_instance:
                    request = self.queue.popleft()
                    self.running += 1
                    threading.Thread(target=self._run, args=(request,), daemon=True).start()
                self.lock.wait(timeout=CLOCK_TICK_SECONDS)

    def _scale(self, now: float) -> None:
        if self.pinned is not None:
            self.instances = self.pinned
            return
        if self.instances == 0 and self.queue:
            # HasBacklogWithoutCapacity -> the step policy adds an instance, which takes a while
            self.woken_at = self.woken_at or now
            if now - self.woken_at >= self.warm_up_seconds:
                self.instances, self.woken_at, self.idle_since = 1, None, now
        elif self.instances and not self.queue and not self.running:
            if now - self.idle_since >= self.idle_seconds:
                self.instances = 0
        else:
            self.idle_since = now

    def _expire(self, now: float) -> None:
        for request in [r for r in self.queue if r.expires_at <= now]:
            self.queue.remove(request)
            threading.Thread(
                target=self._fail,
                args=(
                    request,
                    "ClientError: Request expired: it waited longer than its RequestTTLSeconds",
                    None,
                ),
                daemon=True,
            ).start()

    def _run(self, request: AsyncRequest) -> None:
        requeue = False
        try:
            requeue = self._invoke(request)
            if requeue:
                time.sleep(0.5)  # the instance is being replaced
        except Exception as error:  # noqa: BLE001 - every request ends in a notification
            self._fail(request, f"ServerError: {error}", None)
        finally:
            with self.lock:
                self.running -= 1
                if requeue and not self.stopping.is_set():
                    self.queue.appendleft(request)
                self.idle_since = self.now()
                self.lock.notify_all()

    def _invoke(self, request: AsyncRequest) -> bool:
        """Run one request on the container; True when it must go back to the queue."""
        bucket, key = s3_location(request.input_location)
        s3 = self.client("s3")
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as error:  # noqa: BLE001
            self._fail(
                request, f"ClientError: could not read the input from {request.input_location}: {error}", None
            )
            return False
        try:
            answer = self._post_within(
                body, request.content_type, request.attributes, request.invocation_timeout
            )
        except requests.ConnectionError:
            return True  # no container listening: the request waits for a healthy one
        except requests.Timeout:
            self._fail(
                request,
                f"ClientError: Inference request timed out after {request.invocation_timeout:.0f} seconds "
                "(InvocationTimeoutSeconds)",
                None,
            )
            return False
        if answer.status_code == 200:
            out_bucket, out_key = s3_location(request.output_location)
            s3.put_object(Bucket=out_bucket, Key=out_key, Body=answer.content, ContentType="image/png")
            self._notify(
                self.success_topic,
                request,
                {
                    "invocationStatus": "Completed",
                    "responseParameters": {
                        "contentType": answer.headers.get("Content-Type", ""),
                        "outputLocation": request.output_location,
                    },
                },
            )
            return False
        kind = "client" if answer.status_code < 500 else "server"
        self._fail(
            request,
            f"{kind.title()}Error: Received {kind} error ({answer.status_code}) from primary with message "
            f'"{answer.text[:500]}". See the endpoint\'s logs for more information.',
            answer.content,
        )
        return False

    def _fail(self, request: AsyncRequest, reason: str, body: bytes | None) -> None:
        response: dict[str, str] = {"contentType": "text/plain; charset=utf-8"}
        if body is not None and request.failure_location:
            bucket, key = s3_location(request.failure_location)
            self.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
            response["failureLocation"] = request.failure_location
        self._notify(
            self.error_topic,
            request,
            {"invocationStatus": "Failed", "failureReason": reason, "responseParameters": response},
        )

    def _notify(self, topic: str, request: AsyncRequest, outcome: dict[str, Any]) -> None:
        if not topic:
            return
        message = {
            "awsRegion": REGION,
            "eventTime": now_iso(),
            "receivedTime": request.received,
            **outcome,
            "requestParameters": {
                "contentType": request.content_type,
                "endpointName": self.name,
                "inputLocation": request.input_location,
            },
            "inferenceId": request.inference_id,
            "eventVersion": "1.0",
            "eventSource": "aws:sagemaker",
            "eventName": "InferenceResult",
        }
        self.client("sns").publish(TopicArn=topic, Message=json.dumps(message))
        self.notifications += 1

    # ---- the APIs ------------------------------------------------------------------------------
    def enqueue(self, headers: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        location = headers.get("X-Amzn-SageMaker-InputLocation", "")
        ttl = int(headers.get("X-Amzn-SageMaker-RequestTTLSeconds") or 21600)
        timeout = int(headers.get("X-Amzn-SageMaker-InvocationTimeoutSeconds") or 900)
        if not location.startswith("s3://"):
            return 400, {"message": "InputLocation must be an S3 URI"}, {}
        if not 60 <= ttl <= 21600 or not 1 <= timeout <= MAX_INVOCATION_SECONDS:
            return 400, {"message": "RequestTTLSeconds must be 60-21600, InvocationTimeoutSeconds 1-3600"}, {}
        name = f"{uuid.uuid4()}"
        request = AsyncRequest(
            inference_id=headers.get("X-Amzn-SageMaker-Inference-Id") or str(uuid.uuid4()),
            input_location=location,
            output_location=f"{self.output_path}/{name}.out",
            failure_location=f"{self.failure_path}/{name}-error.out" if self.failure_path else "",
            attributes=headers.get("X-Amzn-SageMaker-Custom-Attributes", ""),
            content_type=headers.get("X-Amzn-SageMaker-Content-Type", "application/octet-stream"),
            expires_at=self.now() + ttl,
            invocation_timeout=timeout,
        )
        with self.lock:
            self.queue.append(request)
            self.lock.notify_all()
        answer_headers = {"X-Amzn-SageMaker-OutputLocation": request.output_location}
        if request.failure_location:
            answer_headers["X-Amzn-SageMaker-FailureLocation"] = request.failure_location
        return 202, {"InferenceId": request.inference_id}, answer_headers

    def _post_within(
        self, body: bytes, content_type: str, attributes: str, seconds: float
    ) -> requests.Response:
        """The container's answer, or ``requests.Timeout`` once ``seconds`` (the request's
        InvocationTimeoutSeconds) have passed on the endpoint's clock, which a test may hold and
        move on (``held_clock``, ``advance``) instead of waiting them out. An answer that comes
        later is dropped, as SageMaker drops it."""
        outcome: dict[str, Any] = {}
        answered = threading.Event()

        def post() -> None:
            try:
                outcome["answer"] = self._post_to_container(
                    body, content_type, attributes, MAX_INVOCATION_SECONDS
                )
            except Exception as error:  # noqa: BLE001 - handed to the waiting thread
                outcome["error"] = error
            finally:
                answered.set()

        threading.Thread(target=post, daemon=True).start()
        deadline = self.now() + seconds
        while not answered.wait(CLOCK_TICK_SECONDS):
            if self.now() >= deadline:
                raise requests.Timeout(f"no answer within {seconds:.0f} s")
        if "error" in outcome:
            raise outcome["error"]
        answer: requests.Response = outcome["answer"]
        return answer

    def _post_to_container(
        self, body: bytes, content_type: str, attributes: str, read_timeout: float
    ) -> requests.Response:
        """The container contract: the image to /invocations, the options as custom attributes."""
        return requests.post(
            self.container_url + "/invocations",
            data=body,
            headers={"Content-Type": content_type, "X-Amzn-SageMaker-Custom-Attributes": attributes},
            timeout=(2, read_timeout),
        )

    def invoke_realtime(self, body: bytes, headers: Any) -> tuple[int, bytes, dict[str, str]]:
        try:
            answer = self._post_to_container(
                body,
                headers.get("Content-Type", "application/octet-stream"),
                headers.get("X-Amzn-SageMaker-Custom-Attributes", ""),
                60,
            )
        except requests.RequestException:
            return (
                503,
                json.dumps({"message": "the endpoint has no healthy instance"}).encode(),
                {"x-amzn-ErrorType": "ServiceUnavailable"},
            )
        if answer.status_code == 200:
            return 200, answer.content, {"Content-Type": answer.headers.get("Content-Type", "")}
        wrapped = {
            "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
            "OriginalStatusCode": answer.status_code,
            "OriginalMessage": answer.text,
            "Message": f"Received client error ({answer.status_code}) from primary",
        }
        return 424, json.dumps(wrapped).encode(), {"x-amzn-ErrorType": "ModelError"}

    def describe(self) -> dict[str, Any]:
        with self.lock:
            desired = max(self.instances, 1 if (self.woken_at is not None) else 0)
            return {
                "EndpointName": self.name,
                "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{self.name.lower()}",
                "EndpointConfigName": f"{self.name}-config",
                "EndpointStatus": "InService",
                "ProductionVariants": [
                    {
                        "VariantName": "AllTraffic",
                        "CurrentInstanceCount": self.instances,
                        "DesiredInstanceCount": desired,
                        "CurrentWeight": 1.0,
                        "DesiredWeight": 1.0,
                    }
                ],
                "CreationTime": 0,
                "LastModifiedTime": 0,
            }

    def _handler(self):
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                headers = {"Content-Type": "application/json", **(headers or {})}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                path = self.path.split("?")[0]
                if path.endswith("/invocations") and length > REALTIME_PAYLOAD_LIMIT:
                    # answered before the body is read, as AWS refuses an oversized request
                    self.close_connection = True
                    message = f"HTTP content length exceeded {REALTIME_PAYLOAD_LIMIT} bytes."
                    self._answer(
                        413,
                        json.dumps({"message": message}).encode(),
                        {"x-amzn-ErrorType": "ValidationError"},
                    )
                    return
                body = self.rfile.read(length) if length else b""
                if path.endswith("/async-invocations"):
                    status, answer, headers = endpoint.enqueue(self.headers)
                    if status != 202:
                        headers = {"x-amzn-ErrorType": "ValidationError"}
                    self._answer(status, json.dumps(answer).encode(), headers)
                elif path.endswith("/invocations"):
                    self._answer(*endpoint.invoke_realtime(body, self.headers))
                elif self.headers.get("X-Amz-Target", "") == "SageMaker.DescribeEndpoint":
                    name = json.loads(body or b"{}").get("EndpointName")
                    if name != endpoint.name:
                        message = {
                            "__type": "ValidationException",
                            "message": f"Could not find endpoint {name}",
                        }
                        self._answer(
                            400, json.dumps(message).encode(), {"Content-Type": "application/x-amz-json-1.1"}
                        )
                        return
                    self._answer(
                        200,
                        json.dumps(endpoint.describe()).encode(),
                        {"Content-Type": "application/x-amz-json-1.1"},
                    )
                else:
                    self._answer(404, b'{"message": "not emulated"}')

        return Handler
