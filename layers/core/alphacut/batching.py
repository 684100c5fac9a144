"""Model runs for requests that arrive together, as one batch: how the GPU server feeds its device.

One thread runs the models, and nothing else. A request's picture waits at most ``window_seconds``
for others to join it, up to ``max_batch`` pictures, and the batch goes through
``Pipeline.infer_mattes`` (one ISNet run where the engine takes batches). The CPU work of each
picture (decoding, the models' inputs, the matte's clean-up, encoding) stays in its request thread,
so pictures are prepared and finished side by side while the model thread runs the batch before:
on an H200 the per-picture CPU work done in the model thread held the server at a tenth of the
model's rate (docs/benchmarks.md, "The GPU path").

Usage::

    batcher = MatteBatcher(pipeline, max_batch=8, window_seconds=0.005)
    alpha = batcher.matte(image, SubjectType.AUTO, Quality.AUTO)   # from any request thread
    batcher.close()
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from alphacut.codec import DecodedImage
from alphacut.options import DEFAULT_MODEL, Quality, SubjectType
from alphacut.pipeline import MatteRequest, Pipeline, PreparedMatte, RawMatte


@dataclass
class _Job:
    prepared: PreparedMatte
    on_start: Callable[[], None] | None
    answer: Future[RawMatte] = field(default_factory=Future)


class MatteBatcher:
    def __init__(self, pipeline: Pipeline, max_batch: int = 8, window_seconds: float = 0.005):
        if max_batch < 1 or window_seconds < 0:
            raise ValueError("max_batch must be at least 1 and window_seconds at least 0")
        self.pipeline, self.max_batch, self.window = pipeline, max_batch, window_seconds
        self.batch_sizes: list[int] = []  # what ran, for the benchmark and the tests
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="matte-batcher", daemon=True)
        self._thread.start()

    def matte(
        self,
        image: DecodedImage,
        subject: SubjectType,
        quality: Quality = Quality.AUTO,
        on_start: Callable[[], None] | None = None,
        model: str = DEFAULT_MODEL,
    ) -> np.ndarray:
        """The picture's alpha, as ``Pipeline.matte``; ``on_start`` runs when its batch starts."""
        prepared = self.pipeline.prepare_matte(MatteRequest(image, subject, quality=quality, model=model))
        job = _Job(prepared, on_start)
        self._jobs.put(job)
        return self.pipeline.finish_matte(prepared, job.answer.result())

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=10)

    def _collect(self, first: _Job) -> list[_Job]:
        jobs, deadline = [first], time.monotonic() + self.window
        while len(jobs) < self.max_batch:
            try:
                job = self._jobs.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                self._jobs.put(None)  # stop after this batch
                break
            jobs.append(job)
        return jobs

    def _serve(self) -> None:
        while (first := self._jobs.get()) is not None:
            jobs = self._collect(first)
            self.batch_sizes.append(len(jobs))
            for job in jobs:
                if job.on_start is not None:
                    job.on_start()
            try:
                outputs = self.pipeline.infer_mattes([job.prepared for job in jobs])
            except Exception:  # noqa: BLE001 - one bad picture must not fail its batch-mates
                for job in jobs:
                    self._run_alone(job)
                continue
            for job, raw in zip(jobs, outputs):
                job.answer.set_result(raw)

    def _run_alone(self, job: _Job) -> None:
        try:
            job.answer.set_result(self.pipeline.infer_mattes([job.prepared])[0])
        except Exception as error:  # noqa: BLE001 - the request thread raises it
            job.answer.set_exception(error)
