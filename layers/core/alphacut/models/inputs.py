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
