"""Input preparation shared by the models (the engines that run them: ``alphacut.models.engines``)."""

from __future__ import annotations

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
