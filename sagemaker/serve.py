"""The SageMaker inference server: the alphacut pipeline's model part behind /ping and /invocations.

SageMaker's container contract: GET /ping (200 when ready) and POST /invocations on port 8080.
The body is the image (an asynchronous endpoint reads it from the request's S3 InputLocation and
writes the answer to S3); the options ride in ``X-Amzn-SageMaker-Custom-Attributes`` as a query
string (``type=person&quality=auto&task=<task id>``). The answer is the alpha matte as a
one-channel PNG at the input's size; the Compose step cuts the image out. A refused image answers
its 4xx with the error's JSON (code, message, field), which SageMaker keeps at the failure location.
The engine is chosen as everywhere (``alphacut.models.engines``): onnxruntime's CUDA provider in
the GPU image, OpenVINO bf16 on a CPU instance with AMX, onnxruntime otherwise: the same code runs on
a GPU instance and on a laptop. Requests that arrive within ALPHACUT_BATCH_WINDOW_MS (5) of each
other run as one batch of up to ALPHACUT_MAX_BATCH (8) (``alphacut.batching``); decoding and
encoding run in the request threads, beside the model.

SAGEMAKER_MODEL_SERVER_WORKERS (1) processes serve one listening socket, each with its own models,
batches and interpreter lock: the socket is bound, then the workers are forked before any of them
loads a model (a CUDA context does not survive a fork). The first process stays to watch them: one
that dies stops the others and the container, which SageMaker replaces. Each answer names its
worker's process id in ``X-Alphacut-Worker``.

On a GPU instance (``ALPHACUT_REQUIRE_GPU=1``, which the template sets from the instance type, or
an NVIDIA device visible) whose models do not run on CUDA, /ping answers 503 with the reason (the
library onnxruntime's CUDA provider could not load) and /invocations 503: SageMaker never takes
such an instance into service, rather than selling GPU time at CPU speed.

With ``TASKS_TABLE`` set and a ``task`` attribute, the task goes from waiting (3) to processing
(4) when its model run starts: the one moment no notification reports. The table's region comes
from ``TASKS_TABLE_REGION``, which the template sets: SageMaker hosting need not set ``AWS_REGION``,
and boto3 without a region cannot make a client at all.

    python sagemaker/serve.py --port 8080
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

# Before numpy loads: its BLAS would run a thread per core in each call of each request thread,
# spinning between calls. The server's parallelism is its request threads: on an H200's 16 cores
# the pool kept 12.5 cores busy for one picture at a time and held the server to a third of its
# pictures a second (docs/benchmarks.md, "The GPU path on an H200").
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from alphacut.api.request import declared_length
from alphacut.batching import MatteBatcher
from alphacut.codec import encode_mask
from alphacut.errors import AlphacutError, http_status
from alphacut.matte import alpha_to_uint8
from alphacut.models.engines import unserved_gpu
from alphacut.models.registry import DEFAULT_MODEL, check_model
from alphacut.options import Quality, SubjectType
from alphacut.pipeline import Pipeline, Timings
from alphacut.settings import EngineSettings

ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"


def mark_started(task_id: str | None) -> None:
    """Tell the task table the model took this task (no table or no task: nothing to tell)."""
    table_name = os.environ.get("TASKS_TABLE")
    if not task_id or not table_name:
        return
    import boto3
    from alphacut.aws.tasks.table import TaskTable

    try:
        region = os.environ.get("TASKS_TABLE_REGION") or None  # None: boto3's own chain
        TaskTable(table_name, boto3.resource("dynamodb", region_name=region)).model_started(task_id)
    except Exception:  # noqa: BLE001 - the state is informative; the matte matters more
        traceback.print_exc()


def make_server(
    listener: socket.socket, pipeline: Pipeline, batcher: MatteBatcher, unhealthy: str = ""
) -> ThreadingHTTPServer:
    """A server accepting on ``listener`` (bound and listening: every worker shares it);
    ``unhealthy``: why this instance must not serve (``unserved_gpu``); '' when it may."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _answer(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Alphacut-Worker", str(os.getpid()))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/ping" and unhealthy:
                body = {"status": "unhealthy", "reason": unhealthy}
                self._answer(503, json.dumps(body).encode(), "application/json")
            elif self.path == "/ping":
                self._answer(200, b'{"status":"ok"}', "application/json")
            else:
                self._answer(404, b"{}", "application/json")

        def do_POST(self):
            if self.path != "/invocations":
                self._answer(404, b"{}", "application/json")
                return
            if unhealthy:
                detail = {"code": "gpu_unavailable", "message": unhealthy}
                self._answer(503, json.dumps(detail).encode(), "application/json")
                return
            attributes = dict(parse_qsl(self.headers.get(ATTRIBUTES_HEADER, "")))
            try:
                data = self.rfile.read(
                    declared_length(self.headers.get("Content-Length"), pipeline.limits.max_bytes)
                )
                subject = SubjectType(attributes.get("type", "auto"))
                # quality=auto: best (mirror averaged) where the engine makes model time cheap
                quality = Quality(attributes.get("quality", "auto"))
                model = check_model(
                    attributes.get("model", DEFAULT_MODEL), pipeline.models.specs, pipeline.place
                ).name
                timings = Timings()
                image = pipeline.decode(data, timings)
                task = attributes.get("task")
                with timings.stage("inference"):  # the wait for its batch included
                    alpha = batcher.matte(
                        image, subject, quality, on_start=lambda: mark_started(task), model=model
                    )
                with timings.stage("encode"):
                    body = encode_mask(alpha_to_uint8(alpha))
                self._answer(
                    200,
                    body,
                    "image/png",
                    {"X-Alphacut-Timings": json.dumps({k: round(v, 1) for k, v in timings.items()})},
                )
            except (AlphacutError, ValueError) as error:
                detail = (
                    error.to_dict()
                    if isinstance(error, AlphacutError)
                    else {"code": "invalid_option", "message": str(error), "field": "type"}
                )
                status = http_status(error) if isinstance(error, AlphacutError) else 400
                self._answer(status, json.dumps(detail).encode(), "application/json")
            except Exception:  # noqa: BLE001 - a model failure must still answer (the detail to the log)
                traceback.print_exc()
                detail = {"code": "model_error", "message": "the model failed on this image"}
                self._answer(500, json.dumps(detail).encode(), "application/json")

    server = ModelHTTPServer(listener.getsockname()[:2], Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = listener
    return server


class ModelHTTPServer(ThreadingHTTPServer):
    """A thread per connection, on a socket bound before the workers start."""

    daemon_threads = True


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, with a queue for the invocations SageMaker sends at once (the
    standard library's 5 reset the sixth and later of 32 concurrent connections)."""
    return socket.create_server((host, port), backlog=256)


def run_workers(count: int, serve: Callable[[], int]) -> int:
    """``serve`` in ``count`` forked processes; returns when one of them ends (the others are
    stopped): a worker that died leaves the container to SageMaker's health check. SIGTERM
    stops them all."""
    workers = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            os._exit(serve())
        workers.append(pid)

    def stop(*_: object) -> None:
        for pid in workers:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    try:
        ended, status = os.wait()
    finally:
        stop()
        for pid in workers:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    print(f"worker {ended} ended ({status}): the server stops", flush=True)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="alphacut SageMaker inference server")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    settings = EngineSettings.from_env()
    listener = listen(args.host, args.port)
    if settings.server_workers == 1:
        return serve_worker(listener, settings)
    return run_workers(settings.server_workers, lambda: serve_worker(listener, settings))


def serve_worker(listener: socket.socket, settings: EngineSettings) -> int:
    """One worker: its models loaded and warmed, then its answers until stopped."""
    started = time.perf_counter()
    pipeline = Pipeline.from_settings(settings, place="gpu")
    pipeline.warm_up(("isnet", "selfie"))  # the task path: object and person mattes
    pipeline.warm_batch()  # the one batch shape's kernels chosen now (a GPU)
    batcher = MatteBatcher(pipeline, settings.max_batch, settings.batch_window_ms / 1000)
    unhealthy = unserved_gpu(pipeline.models.engine, settings.require_gpu)
    server = make_server(listener, pipeline, batcher, unhealthy)
    if unhealthy:
        print(f"UNHEALTHY: a GPU instance whose models do not run on CUDA: {unhealthy}", flush=True)
    host, port = listener.getsockname()[:2]
    print(
        f"alphacut model server on {host}:{port} ({pipeline.models.engine.label}, "
        f"batches of up to {settings.max_batch} within {settings.batch_window_ms:g} ms, "
        f"worker {os.getpid()} of {settings.server_workers}), "
        f"models loaded in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    return 0


if __name__ == "__main__":
    # SageMaker starts the container with the argument "serve"
    sys.exit(main([a for a in sys.argv[1:] if a != "serve"]))
