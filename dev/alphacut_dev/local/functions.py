"""Warm worker processes for the template's functions: one event at a time per worker, as one
Lambda instance takes them, and a function's instances up to its concurrency.

Usage::

    instances = FunctionInstances(spec, count=2, reserved=None)
    answer = instances.invoke(event)
"""

from __future__ import annotations

import json
import multiprocessing
import threading

from alphacut.api.responses import LAMBDA_ANSWER_LIMIT

from alphacut_dev.local.worker import FunctionSpec, serve


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

    def running(self) -> list[FunctionWorker]:
        """The instances with a call in progress (a test kills the one running its call)."""
        with self._lock:
            return [instance for instance in self.instances if instance not in self._free]

    def restart(self) -> None:
        for instance in self.instances:
            instance.restart()

    def stop(self) -> None:
        for instance in self.instances:
            instance.stop()
