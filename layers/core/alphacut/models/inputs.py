"""Input preparation shared by the models (the engines that run them: ``alphacut.models.engines``)."""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image


def stretched_batch(rgb: np.ndarray, side: int, offset: float, scale: float) -> np.ndarray:
    """H x W x 3 uint8 -> 1 x 3 x side x side float32: the picture stretched to the model's square
    (bilinear, aspect not kept), then ``(x - offset) * scale``, channel-first."""
    image = Image.fromarray(rgb)
    if image.size != (side, side):
        image = image.resize((side, side), Image.Resampling.BILINEAR, reducing_gap=3.0)
    chw = np.asarray(image).transpose(2, 0, 1).astype(np.float32)
    chw -= offset
    chw *= scale
    return chw[None]


def in_runs(inputs: list[np.ndarray], size: int) -> list[np.ndarray]:
    """Inputs of one picture each as the runs of a session that takes ``size`` pictures a run:
    stacked ``size`` at a time, the last run padded with blank pictures.

    One shape for every run: onnxruntime's CUDA kernels keep the cuDNN plans of the last shape they
    met and build them again whenever it changes (``alphacut.models.engines.Engine.batch_size``).
    The blank pictures cost the GPU less than a change of shape costs its CPU."""
    runs = []
    for start in range(0, len(inputs), size):
        chunk = inputs[start : start + size]
        stacked = np.zeros((size, *chunk[0].shape[1:]), chunk[0].dtype)
        np.concatenate(chunk, out=stacked[: len(chunk)])
        runs.append(stacked)
    return runs


class RunBuffer:
    """The one array a batching session's runs are filled into, run after run (``in_runs``'s
    shape: the pictures, then blank ones), while ``lock`` is held. ISNet's run of 8 is 100 MB: a
    new one each run cost the kernel its pages and zeroing, in the GPU server's model thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._array: np.ndarray | None = None
        self._dirty = 0  # the leading pictures that hold a previous run's data

    def fill(self, chunk: list[np.ndarray], size: int) -> np.ndarray:
        """The run of ``chunk`` (at most ``size`` inputs of one picture each), padded with blanks."""
        shape = (size, *chunk[0].shape[1:])
        if self._array is None or self._array.shape != shape or self._array.dtype != chunk[0].dtype:
            self._array, self._dirty = np.zeros(shape, chunk[0].dtype), 0
        np.concatenate(chunk, out=self._array[: len(chunk)])
        self._array[len(chunk) : self._dirty] = 0
        self._dirty = len(chunk)
        return self._array
