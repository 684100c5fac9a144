"""The SageMaker inference server: the alphacut pipeline's model part behind /ping and /invocations.

SageMaker's container contract: GET /ping (200 when ready) and POST /invocations on port 8080.
The body is the image; the options ride in ``X-Amzn-SageMaker-Custom-Attributes`` as a query string
(``type=person``). The answer is the alpha matte as a one-channel PNG at the input's size; the
caller composes the cutout (foreground colours, crop, encode) on its side. onnxruntime takes CUDA
when the image has it, the CPU otherwise: the same code runs on a GPU instance and on a laptop.

For the local stack the server also answers the runtime API's own path,
``POST /endpoints/<name>/invocations``, and reports failures as SageMaker does (424,
``x-amzn-ErrorType: ModelError``), so a plain boto3 sagemaker-runtime client pointed at it with
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` behaves as against AWS.

    python sagemaker/serve.py --port 8080
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

from alphacut.api.request import declared_length
from alphacut.codec import encode_mask
from alphacut.errors import AlphacutError, http_status
from alphacut.matte import alpha_to_uint8
from alphacut.models.sessions import providers
from alphacut.options import Quality, SubjectType
from alphacut.pipeline import Pipeline, Timings

RUNTIME_PATH = re.compile(r"^/endpoints/[^/]+/invocations$")
ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"


def make_server(host: str, port: int, pipeline: Pipeline) -> ThreadingHTTPServer:
    inference_lock = threading.Lock()  # one model run at a time: the device is the bottleneck anyway

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _answer(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/ping":
                self._answer(200, b'{"status":"ok"}', "application/json")
            else:
                self._answer(404, b"{}", "application/json")

        def do_POST(self):
            runtime_api = bool(RUNTIME_PATH.match(self.path.split("?")[0]))
            if self.path != "/invocations" and not runtime_api:
                self._answer(404, b"{}", "application/json")
                return
            attributes = dict(parse_qsl(self.headers.get(ATTRIBUTES_HEADER, "")))
            try:
                data = self.rfile.read(
                    declared_length(self.headers.get("Content-Length"), pipeline.limits.max_bytes)
                )
                subject = SubjectType(attributes.get("type", "auto"))
                # the GPU path: model time is cheap, so quality=auto means best (mirror averaged)
                quality = Quality(attributes.get("quality", "auto")).on(gpu=True)
                timings = Timings()
                image = pipeline.decode(data, timings)
                with inference_lock:
                    alpha = pipeline.matte(image, subject, timings, quality=quality)
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
                self._fail(
                    runtime_api, http_status(error) if isinstance(error, AlphacutError) else 400, detail
                )
            except Exception:  # noqa: BLE001 - a model failure must still answer (the detail to the log)
                traceback.print_exc()
                self._fail(
                    runtime_api, 500, {"code": "model_error", "message": "the model failed on this image"}
                )

        def _fail(self, runtime_api: bool, status: int, detail: dict) -> None:
            body = json.dumps(detail).encode()
            if runtime_api:  # what the SageMaker runtime API says about a container failure
                wrapped = json.dumps(
                    {
                        "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
                        "OriginalStatusCode": status,
                        "OriginalMessage": body.decode(),
                        "Message": detail["message"],
                    }
                ).encode()
                self._answer(424, wrapped, "application/json", {"x-amzn-ErrorType": "ModelError"})
            else:
                self._answer(status, body, "application/json")

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="alphacut SageMaker inference server")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    pipeline = Pipeline.from_settings()
    pipeline.warm_up(("isnet", "selfie"))  # the task path: object and person mattes
    server = make_server(args.host, args.port, pipeline)
    print(
        f"alphacut model server on {args.host}:{args.port} ({', '.join(providers())}), "
        f"models loaded in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    # SageMaker starts the container with the argument "serve"
    sys.exit(main([a for a in sys.argv[1:] if a != "serve"]))
