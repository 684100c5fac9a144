"""The model server (sagemaker/serve.py) with ISNet replaced by a sleep: the server's own CPU work.

``bench_gpu_server.py --sleep-model-ms MS`` starts the server through this launcher. Each ISNet
run sleeps MS milliseconds (the GPU's time for the run) and answers real ISNet mattes made
beforehand on eval photos (ALPHACUT_SLEEP_MATTES, an .npy of N x 1024 x 1024), in turn, so that the
clean-up after the model meets real mattes. The session takes batches of ALPHACUT_MAX_BATCH as a
GPU session does (padded, one shape), so everything but the model runs as on a GPU instance.
What it answers is not the photo's matte: a figure of speed, never of quality.

    python benchmarks/serve_sleeping_model.py SERVE_PY --host 127.0.0.1 --port 8080
"""

from __future__ import annotations

import itertools
import os
import runpy
import sys
import time
from collections.abc import Sequence

# as serve.py does before numpy loads (this launcher loads numpy first): BLAS on one thread
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np


class SleepingSession:
    """A batching ISNet session that sleeps instead of computing."""

    def __init__(self, mattes: np.ndarray, seconds: float, batch_size: int):
        self.input_names = ["input"]
        self.batches = True
        self.batch_size = batch_size
        self.seconds = seconds
        self._turn = itertools.cycle(range(len(mattes)))
        self._mattes = mattes

    def run(self, names: Sequence[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        pictures = feeds["input"].shape[0]
        time.sleep(self.seconds)
        chosen = [next(self._turn) for _ in range(pictures)]
        return [self._mattes[chosen][:, None]]


def install(mattes_path: str, seconds: float, batch_size: int) -> None:
    """ISNet's loader answers sleeping sessions from now on (the serve.py run next imports it)."""
    from alphacut.models import isnet

    mattes = np.load(mattes_path)
    session = SleepingSession(mattes, seconds, batch_size)

    def load(cls, directory, engine=None, threads=0, features=False, weights=None):
        return cls(session, features)

    isnet.IsnetModel.load = classmethod(load)  # type: ignore[method-assign, assignment]


if __name__ == "__main__":
    install(
        os.environ["ALPHACUT_SLEEP_MATTES"],
        float(os.environ["ALPHACUT_SLEEP_MODEL_MS"]) / 1000,
        int(os.environ.get("ALPHACUT_MAX_BATCH", "8")),
    )
    serve_py, *arguments = sys.argv[1:]
    sys.argv = [serve_py, *arguments]
    runpy.run_path(serve_py, run_name="__main__")
