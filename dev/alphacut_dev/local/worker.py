"""One Lambda function, warm, in its own process: its own environment, its module imported once
(init runs once, like a Lambda instance), events answered one at a time over a pipe."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from alphacut_dev.local.account import ACCOUNT, REGION


@dataclass
class FunctionSpec:
    name: str  # logical id, e.g. CutoutFunction
    code_dir: Path
    handler: str  # module.function
    timeout: int
    memory: int
    environment: dict[str, str] = field(default_factory=dict)
    python_paths: list[Path] = field(default_factory=list)


class LambdaContext:
    """The attributes Powertools and handlers read from Lambda's context object."""

    def __init__(self, spec: FunctionSpec, request_id: str, deadline: float):
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = spec.memory
        self.invoked_function_arn = (
            f"arn:aws:lambda:{os.environ.get('AWS_REGION', REGION)}:{ACCOUNT}:function:{spec.name}"
        )
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{spec.name}"
        self.log_stream_name = "local"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def serve(connection, spec: FunctionSpec) -> None:
    """Worker process body (multiprocessing spawn target)."""
    # Ctrl-C reaches the whole process group; the stack stops its workers itself (``None``, then
    # kill), so a worker ignores it rather than print a KeyboardInterrupt traceback each
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(spec.environment)
    os.environ["AWS_LAMBDA_FUNCTION_NAME"] = spec.name
    os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(spec.memory)
    for path in reversed([spec.code_dir, *spec.python_paths]):
        sys.path.insert(0, str(path))
    started = time.perf_counter()
    try:
        module_name, function_name = spec.handler.rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as error:  # noqa: BLE001 - an init error: report it and stop, as Lambda would
        connection.send(("init_error", f"{type(error).__name__}: {error}\n{traceback.format_exc()}"))
        return
    connection.send(("ready", (time.perf_counter() - started) * 1000))
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return
        if message is None:
            return
        event, request_id = message
        context = LambdaContext(spec, request_id or str(uuid.uuid4()), time.time() + spec.timeout)
        try:
            connection.send(("ok", handler(event, context)))
        except Exception as error:  # noqa: BLE001 - the handler's failure is the invocation's result
            connection.send(
                (
                    "error",
                    {
                        "errorMessage": str(error),
                        "errorType": type(error).__name__,
                        "stackTrace": traceback.format_exc().splitlines(),
                    },
                )
            )
        sys.stdout.flush()
