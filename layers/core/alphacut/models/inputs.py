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


def bucketed(batches: list[np.ndarray]) -> np.ndarray:
    """Inputs of one picture each, stacked and padded with blank pictures to the next power of two.

    A GPU session searches cuDNN's kernels for each input shape at its first run (1.5 to 3.5 s for
    ISNet on an H200, docs/benchmarks.md "The GPU path"); batches of any size from 1 to 16 would pay
    that in customers' calls sixteen times over. Padded, a session meets five shapes, searched at
    warm-up (``Pipeline.warm_batches``); the blank pictures cost the GPU little next to them."""
    count = sum(len(batch) for batch in batches)
    size = 1 << (count - 1).bit_length()
    stacked = np.zeros((size, *batches[0].shape[1:]), batches[0].dtype)
    np.concatenate(batches, out=stacked[:count])
    return stacked


def batch_buckets(most: int) -> list[int]:
    """The padded batch sizes (``bucketed``) that batches of up to ``most`` pictures run at."""
    return [1 << k for k in range((most - 1).bit_length() + 1)]
